"""The auth matrix of the Oslo status-api surface: every endpoint without a token, with a
wrong one, and with each scope. 401 ``{"message": "Unauthorized"}`` and 403
``{"message": "Access denied"}`` come before anything is looked up (no existence oracle)."""

from __future__ import annotations

import base64

import httpx
import pytest

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CREATE = {
    "domain": "dataset",
    "domain_id": "my-dataset/1",
    "start_time": "2020-03-02T12:34:23",
    "end_time": "2020-03-02T12:34:24",
    "component": "data-uploader",
    "s3_path": "auth/matrix.csv",
}
EVENT = {
    "domain": "dataset",
    "start_time": "2020-03-02T12:35:00",
    "end_time": "2020-03-02T12:35:01",
    "trace_status": "CONTINUE",
    "trace_event_status": "OK",
    "component": "s3-writer",
}
PATH = base64.b64encode(b"auth/matrix.csv").decode()
MISSING_PATH = base64.b64encode(b"auth/nothing-here.csv").decode()

#: (method, path template, body, the scope it needs)
ENDPOINTS = [
    ("POST", "/status", CREATE, Scope.start),
    ("GET", "/status/{trace}", None, Scope.read),
    ("GET", "/status/{trace}/summary", None, Scope.read),
    ("POST", "/status/{trace}", EVENT, Scope.operate),
    ("GET", f"/status-from-path/{PATH}", None, Scope.read),
]
IDS = ["create", "get", "summary", "update", "from-path"]


async def call(
    api: ApiServer, method: str, path: str, body: object, headers: dict[str, str]
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{api.url}/status-api", timeout=30) as client:
        return await client.request(method, path, json=body, headers=headers)


async def a_trace(api: ApiServer) -> str:
    response = await call(api, "POST", "/status", CREATE, api.headers(Scope.start))
    trace_id: str = response.json()["trace_id"]
    return trace_id


@pytest.mark.parametrize(("method", "path", "body", "needed"), ENDPOINTS, ids=IDS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer osk_nope_nope"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "osk_nope_nope"},
    ],
    ids=["none", "unknown", "empty", "basic", "no-scheme"],
)
async def test_without_a_valid_token_is_401(
    api: ApiServer,
    method: str,
    path: str,
    body: object,
    needed: Scope,
    headers: dict[str, str],
) -> None:
    trace_id = await a_trace(api)
    response = await call(api, method, path.format(trace=trace_id), body, headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body", "needed"), ENDPOINTS, ids=IDS)
@pytest.mark.parametrize("scope", list(Scope), ids=[s.value for s in Scope])
async def test_each_scope(
    api: ApiServer, method: str, path: str, body: object, needed: Scope, scope: Scope
) -> None:
    trace_id = await a_trace(api)
    response = await call(api, method, path.format(trace=trace_id), body, api.headers(scope))
    if scope in (needed, Scope.admin):
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403
        assert response.json() == {"message": "Access denied"}


@pytest.mark.parametrize(
    ("method", "path", "body", "needed"),
    [
        ("GET", "/status/no-such-trace", None, Scope.read),
        ("GET", "/status/no-such-trace/summary", None, Scope.read),
        ("POST", "/status/no-such-trace", EVENT, Scope.operate),
        ("GET", f"/status-from-path/{MISSING_PATH}", None, Scope.read),
    ],
    ids=["get", "summary", "update", "from-path"],
)
async def test_an_unknown_trace_is_401_then_403_then_404(
    api: ApiServer, method: str, path: str, body: object, needed: Scope
) -> None:
    anonymous = await call(api, method, path, body, {})
    wrong_scope = Scope.start if needed is not Scope.start else Scope.read
    unscoped = await call(api, method, path, body, api.headers(wrong_scope))
    allowed = await call(api, method, path, body, api.headers(needed))
    assert [anonymous.status_code, unscoped.status_code, allowed.status_code] == [401, 403, 404]


async def test_a_bad_body_without_a_token_is_401_not_400(api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=f"{api.url}/status-api", timeout=30) as client:
        response = await client.post(
            "/status", content=b"{bad", headers={"content-type": "application/json"}
        )
    assert response.status_code == 401


async def test_the_scheme_is_case_insensitive(api: ApiServer) -> None:
    token = api.tokens[Scope.read]
    trace_id = await a_trace(api)
    response = await call(
        api, "GET", f"/status/{trace_id}", None, {"authorization": f"bearer {token}"}
    )
    assert response.status_code == 200
