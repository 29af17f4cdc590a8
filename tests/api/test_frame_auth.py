"""Tokens and the frame's answers to callers: the token commands, 401/403, readiness details,
the insecure mode's warning, and 503 when Redis does not answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import orjson
import pytest

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer, api_server, free_port, wait_healthy
from tests.conftest import AMQP_URL, REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def orch_serv(server: ApiServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI on the server's key prefix."""
    env = {
        **os.environ,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_KEY_PREFIX": server.settings.key_prefix,
        "ORCH_SERV_NAMESPACE": server.settings.namespace,
    }
    return subprocess.run(
        [sys.executable, "-m", "orch_serv", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_token_commands_create_list_and_revoke(api: ApiServer) -> None:
    created = orch_serv(api, "token", "create", "ci-bot", "--scope", "read", "--scope", "START")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("osk_")
    listed = orch_serv(api, "token", "list", "--format", "json")
    rows = orjson.loads(listed.stdout)
    mine = next(r for r in rows if r["name"] == "ci-bot")
    assert mine["scopes"] == ["read", "start"]
    assert token not in listed.stdout  # secrets are never shown again
    async with httpx.AsyncClient(base_url=api.url) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/readyz", headers=auth)).json()["checks"]["redis"] == "ok"
        revoked = orch_serv(api, "token", "revoke", mine["id"])
        assert revoked.returncode == 0, revoked.stderr
        response = await client.get("/v1/runs/whatever", headers=auth)
    assert response.status_code == 401
    assert orch_serv(api, "token", "revoke", mine["id"]).returncode == 1


async def test_token_create_refuses_unknown_scope(api: ApiServer) -> None:
    result = orch_serv(api, "token", "create", "x", "--scope", "root")
    assert result.returncode == 2
    assert "unknown scope" in result.stderr


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic dXNlcjpwdw==", "Bearer osk_nope_nope", "Bearer garbage"],
)
async def test_missing_or_bad_token_is_401_with_challenge(
    api: ApiServer, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    async with httpx.AsyncClient(base_url=api.url) as client:
        response = await client.get("/v1/runs/no-such-run", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


async def test_readyz_gives_reasons_only_to_a_reader(api: ApiServer) -> None:
    async with api.client(None) as anonymous, api.client(Scope.read) as reader:
        plain = (await anonymous.get("/readyz")).json()
        detailed = (await reader.get("/readyz")).json()
    assert plain == detailed == {"status": "ready", "checks": {"redis": "ok", "rabbitmq": "ok"}}


async def test_redis_down_is_503_naming_redis() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with (
        api_server(env={"ORCH_SERV_REDIS_URL": dead}) as server,
        server.client(Scope.read) as client,
    ):
        ready = await client.get("/readyz")
        guarded = await client.get("/v1/runs/some-run")
        alive = await client.get("/healthz")
    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"redis": "unavailable", "rabbitmq": "ok"}
    assert guarded.status_code == 503
    assert guarded.json()["backend"] == "redis"


async def test_insecure_mode_announces_itself_and_needs_no_token() -> None:
    port = free_port()
    env = {**os.environ, "ORCH_SERV_REDIS_URL": REDIS_URL, "ORCH_SERV_AMQP_URL": AMQP_URL}
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "orch_serv", "api", "--port", str(port), "--insecure-no-auth"],
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        first = await asyncio.wait_for(process.stderr.readline(), 60)
        assert b"AUTHENTICATION IS OFF" in first
        await wait_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        await process.communicate()
    assert process.returncode == 0  # SIGTERM: a graceful stop and a normal exit
    async with api_server(insecure=True) as server, server.client(None) as client:
        response = await client.get("/v1/runs/no-such-run")
    assert response.status_code == 404  # no token needed: the lookup itself answers
