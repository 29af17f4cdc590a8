"""Fixtures of the HTTP API tests: a real server in a subprocess (module-scoped: one server
serves a test module; each test works on its own runs, flows or instances)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.server import ApiServer, api_server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def api() -> AsyncIterator[ApiServer]:
    """``orch-serv api`` with authentication on, and a token per scope."""
    async with api_server() as server:
        yield server
