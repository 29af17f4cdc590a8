"""``orch-serv dev APP`` serves the HTTP API beside its embedded orchestrator and services,
behind a fresh admin token that it prints and revokes when it stops."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import httpx
import pytest

from tests.api.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
BANNER = re.compile(
    r"API and dashboard: (http://\S+)/docs .* token \(admin, revoked at exit\): (\S+)"
)


async def _banner(stream: asyncio.StreamReader) -> tuple[str, str]:
    while line := await asyncio.wait_for(stream.readline(), 60):
        found = BANNER.search(line.decode())
        if found:
            return found.group(1), found.group(2)
    raise AssertionError("orch-serv dev printed no API banner")


async def test_dev_serves_the_api_on_the_embedded_backends() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ORCH_SERV_AMQP_URL", "ORCH_SERV_REDIS_URL")
    }
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "orch_serv", "dev", "tests.apps.pipeline:orchestrator"],
        *["--api-port", str(port)],
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        url, token = await _banner(process.stderr)
        assert url == f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            anonymous = await client.get("/v1/flows")
            flows = await client.get("/v1/flows", headers={"Authorization": f"Bearer {token}"})
        assert anonymous.status_code == 401
        assert flows.status_code == 200
        assert flows.json()["flows"], "the embedded orchestrator's flows are served"
    finally:
        process.terminate()
        await process.communicate()
    assert process.returncode == 0
