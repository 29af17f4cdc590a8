"""A real API server with the StateService surface mounted, in a subprocess.

``orch_serv/api/app.py`` mounts the surface once the lead adds it; until then (and after,
harmlessly) this module builds ``create_app`` and mounts ``stateservice.build`` itself at
``/stateservice`` and ``/state``, and serves it as ``orch-serv api`` does
(``python -m tests.charts.stateservice_app PORT``; settings from ``ORCH_SERV_*``, no auth
with ``STATESERVICE_TEST_INSECURE=1``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from orch_serv.api import stateservice
from orch_serv.api.app import create_app
from orch_serv.api.server import serve
from orch_serv.settings import Settings
from tests.api.server import ApiServer, free_port, make_tokens, wait_healthy
from tests.conftest import AMQP_URL, REDIS_URL, cleanup, unique_name

ROOT = Path(__file__).resolve().parents[2]


def create_test_app() -> FastAPI:
    """``create_app`` from the environment, with the StateService surface mounted."""
    settings = Settings(api_stateservice_at_root=True)
    app = create_app(settings, auth=os.environ.get("STATESERVICE_TEST_INSECURE") != "1")
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/stateservice" not in paths:
        app.mount("/stateservice", stateservice.build(app.state.ctx))
    if "/state" not in paths:
        stateservice.mount_at_root(app, app.state.ctx)
    return app


@asynccontextmanager
async def stateservice_server(
    *, insecure: bool = False, names: tuple[str, str] | None = None, clean: bool = True
) -> AsyncIterator[ApiServer]:
    """The server on a fresh namespace and key prefix (or the given ones), a token per scope;
    stopped (and, unless ``clean`` is False, cleaned up) on exit."""
    namespace, prefix = names or (unique_name("ss"), unique_name("ss"))
    settings = Settings(
        amqp_url=AMQP_URL, redis_url=REDIS_URL, namespace=namespace, key_prefix=prefix
    )
    port = free_port()
    env = {
        **os.environ,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_NAMESPACE": namespace,
        "ORCH_SERV_KEY_PREFIX": prefix,
        "STATESERVICE_TEST_INSECURE": "1" if insecure else "0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.charts.stateservice_app",
        str(port),
        env=env,
        cwd=ROOT,
        stderr=asyncio.subprocess.DEVNULL,
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


if __name__ == "__main__":
    asyncio.run(serve(create_test_app(), "127.0.0.1", int(sys.argv[1])))
