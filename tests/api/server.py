"""A real ``orch-serv api`` server in a subprocess, on its own namespace and key prefix, with
one token per scope; used by every HTTP API test."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import redis.asyncio as aioredis

from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.settings import Settings
from tests.conftest import AMQP_URL, REDIS_URL, cleanup, unique_name


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ApiServer:
    """A running server: its URL, settings (namespace, prefix) and a token per scope."""

    url: str
    settings: Settings
    tokens: dict[Scope, str] = field(default_factory=dict)
    process: asyncio.subprocess.Process | None = None

    def headers(self, scope: Scope | None = Scope.admin) -> dict[str, str]:
        """``Authorization`` for a token of ``scope`` (None: no header)."""
        return {} if scope is None else {"Authorization": f"Bearer {self.tokens[scope]}"}

    def client(self, scope: Scope | None = Scope.admin) -> httpx.AsyncClient:
        """An HTTP client carrying a token of ``scope``."""
        return httpx.AsyncClient(base_url=self.url, headers=self.headers(scope), timeout=30)


async def wait_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        for _ in range(600):
            if process.returncode is not None:
                raise RuntimeError(f"orch-serv api exited with {process.returncode}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)  # polling a condition: the server binding its port
    raise RuntimeError("orch-serv api did not answer /healthz")


async def make_tokens(settings: Settings) -> dict[Scope, str]:
    """One token per scope, written straight to Redis."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        store = TokenStore(client, settings.key_prefix)
        return {scope: (await store.create(f"test-{scope.value}", {scope}))[0] for scope in Scope}
    finally:
        await client.aclose()


@asynccontextmanager
async def api_server(
    *,
    insecure: bool = False,
    env: dict[str, str] | None = None,
    stem: str = "api",
    names: tuple[str, str] | None = None,
    clean: bool = True,
) -> AsyncIterator[ApiServer]:
    """Start ``orch-serv api`` on a fresh namespace/prefix (or the given ``names``); stop it
    and, unless ``clean`` is False, delete what it made."""
    namespace, prefix = names or (unique_name(stem), unique_name(stem))
    settings = Settings(
        amqp_url=AMQP_URL, redis_url=REDIS_URL, namespace=namespace, key_prefix=prefix
    )
    port = free_port()
    command = [sys.executable, "-m", "orch_serv", "api", "--port", str(port)]
    if insecure:
        command.append("--insecure-no-auth")
    child_env = {
        **os.environ,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_NAMESPACE": namespace,
        "ORCH_SERV_KEY_PREFIX": prefix,
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        *command, env=child_env, stderr=asyncio.subprocess.DEVNULL
    )
    server = ApiServer(f"http://127.0.0.1:{port}", settings, process=process)
    try:
        await wait_healthy(server.url, process)
        server.tokens = await make_tokens(settings)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        if clean:
            await cleanup(namespace, prefix)
