"""A real ``orch-serv api`` server with the StateService surface also at the root
(``ORCH_SERV_API_STATESERVICE_AT_ROOT=1``), in a subprocess, for the StateService tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.api.server import ApiServer, api_server


@asynccontextmanager
async def stateservice_server(
    *, insecure: bool = False, names: tuple[str, str] | None = None, clean: bool = True
) -> AsyncIterator[ApiServer]:
    """The server on a fresh namespace and key prefix (or the given ones), a token per scope;
    stopped (and, unless ``clean`` is False, cleaned up) on exit."""
    async with api_server(
        insecure=insecure,
        env={"ORCH_SERV_API_STATESERVICE_AT_ROOT": "1"},
        stem="ss",
        names=names,
        clean=clean,
    ) as server:
        yield server
