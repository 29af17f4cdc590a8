"""Who may do what on the StateService surface: every endpoint answers 401 without a valid
token (before looking anything up: no 400 or 404 first), 403 without its scope (read for
reads, operate for PUTs of states and machines, admin to load a chart), in the surface's
shapes (plain text on ``/state``, problem documents on the JSON endpoints)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer
from tests.charts.stateservice_app import stateservice_server

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

#: (method, path, the scope it needs); nothing named here exists.
ENDPOINTS = [
    ("GET", "/state", Scope.read),
    ("HEAD", "/state", Scope.read),
    ("PUT", "/state", Scope.operate),
    ("GET", "/stateservice/state?chart=nochart", Scope.read),
    ("PUT", "/stateservice/state?chart=nochart", Scope.operate),
    ("GET", "/stateservice/charts/nochart/machines/m/state?state=a", Scope.read),
    ("PUT", "/stateservice/charts/nochart/machines/m/state?state=a", Scope.operate),
    ("GET", "/stateservice/charts", Scope.read),
    ("GET", "/stateservice/charts/nochart", Scope.read),
    ("PUT", "/stateservice/charts/nochart", Scope.admin),
    ("GET", "/stateservice/charts/nochart/machines", Scope.read),
    ("GET", "/stateservice/charts/nochart/machines/m", Scope.read),
    ("PUT", "/stateservice/charts/nochart/machines/m", Scope.operate),
    ("DELETE", "/stateservice/charts/nochart/machines/m", Scope.operate),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server() -> AsyncIterator[ApiServer]:
    """The surface with authentication on."""
    async with stateservice_server() as server:
        yield server


def plain(path: str) -> bool:
    return path.split("?")[0].endswith("/state")


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
async def test_no_token_is_401_before_anything_else(
    server: ApiServer, method: str, path: str, scope: Scope
) -> None:
    for headers in ({}, {"Authorization": "Bearer osk_nope_nope"}, {"Authorization": "Basic x"}):
        async with server.client(None) as client:
            response = await client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        if method == "HEAD":
            continue
        if plain(path):
            assert response.headers["content-type"].startswith("text/plain")
            assert "bearer token" in response.text
        else:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 401


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
async def test_each_scope_is_checked(
    server: ApiServer, method: str, path: str, scope: Scope
) -> None:
    for token in Scope:
        async with server.client(token) as client:
            response = await client.request(method, path)
        allowed = token is scope or token is Scope.admin
        if allowed:
            # past authentication: the request's own answer (no such chart, no state given)
            assert response.status_code in (200, 400, 404), (token, method, path, response.text)
        else:
            assert response.status_code == 403, (token, method, path, response.text)
            if method != "HEAD":
                assert f"the token lacks the '{scope.value}' scope" in response.text
