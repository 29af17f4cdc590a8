"""The api container's healthcheck, run as Docker would run it, against a real server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.api.server import api_server

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


async def test_the_compose_healthcheck_passes_against_a_ready_server() -> None:
    probe = yaml.safe_load(COMPOSE.read_text())["services"]["api"]["healthcheck"]["test"]
    async with api_server() as server:
        port = urlsplit(server.url).port
        code = probe[3].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        probe_process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(probe_process.communicate(), 30)
    assert probe_process.returncode == 0, stderr
