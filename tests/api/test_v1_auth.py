"""The auth matrix of every ``/v1`` operation over a real server: no token and a wrong token
are 401 (before any lookup: an unknown run is 401, not 404, and a malformed body is 401,
not 400), each scope is allowed or 403, and ``admin`` is allowed everywhere."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from orch_serv.api import create_app
from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.settings import Settings
from tests.api.server import ApiServer, make_tokens
from tests.api.v1_support import UNKNOWN_RUN
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@dataclass(frozen=True)
class Op:
    """An operation, the scope it needs, and what an allowed call answers (no side effect:
    unknown ids and names)."""

    method: str
    path: str
    scope: Scope
    allowed: int
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


RUN = f"/v1/runs/{UNKNOWN_RUN}"
OPERATIONS = [
    Op("POST", "/v1/runs", Scope.start, 404, {"flow": "no-such-flow"}),
    Op("GET", "/v1/runs", Scope.read, 200),
    Op("GET", RUN, Scope.read, 404),
    Op("POST", f"{RUN}/cancel", Scope.operate, 404, {"reason": "x"}),
    Op("POST", f"{RUN}/retry", Scope.operate, 404),
    Op("POST", f"{RUN}/signals/go", Scope.operate, 404, {"data": 1}),
    Op("GET", f"{RUN}/events", Scope.read, 404),
    Op("GET", f"{RUN}/events/stream", Scope.read, 404),
    Op("GET", "/v1/flows", Scope.read, 200),
    Op("GET", "/v1/flows/no-such-flow", Scope.read, 404),
    Op("GET", "/v1/flows/no-such-flow/versions", Scope.read, 404),
    Op("GET", "/v1/flows/no-such-flow/versions/v1", Scope.read, 404),
    Op("GET", "/v1/deadletters", Scope.read, 200),
    Op("GET", "/v1/deadletters/no-such-letter", Scope.read, 404),
    Op("POST", "/v1/deadletters/replay", Scope.operate, 404, {"ids": ["no-such-letter"]}),
    Op("POST", "/v1/deadletters/purge", Scope.operate, 404, {"ids": ["no-such-letter"]}),
]
WRONG = ["", "Bearer", "Bearer osk_nope_nope", "Basic dXNlcjpwdw==", "osk_a_b"]


def _ids(op: Op) -> str:
    return str(op)


async def test_every_operation_is_in_the_matrix() -> None:
    app = create_app(Settings(amqp_url="memory://auth", redis_url="memory://auth"))
    documented = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if set(operation.get("tags", ())) & {"runs", "events", "flows", "dead letters"}
    }
    covered = {
        (method, path)
        for method, path in documented
        for op in OPERATIONS
        if op.method == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", path), op.path)
    }
    assert covered == documented and len(OPERATIONS) == len(documented)


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
async def test_no_or_wrong_token_is_401(api: ApiServer, op: Op) -> None:
    async with api.client(None) as client:
        for authorization in [None, *WRONG]:
            headers = {} if authorization is None else {"Authorization": authorization}
            response = await client.request(op.method, op.path, json=op.body, headers=headers)
            assert response.status_code == 401, (authorization, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"
        if op.method == "POST":  # a malformed body, too: authentication comes first
            response = await client.request(
                op.method, op.path, content=b"{oops", headers={"content-type": "application/json"}
            )
            assert response.status_code == 401


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
async def test_each_scope_is_allowed_or_403(api: ApiServer, op: Op) -> None:
    async with api.client(None) as client:
        for scope in Scope:
            response = await client.request(
                op.method, op.path, json=op.body, headers=api.headers(scope)
            )
            if scope in (op.scope, Scope.admin):
                assert response.status_code == op.allowed, (scope, response.text)
            else:
                assert response.status_code == 403, (scope, response.text)
                assert f"lacks the '{op.scope.value}' scope" in response.json()["detail"]


async def test_a_revoked_token_is_401(api: ApiServer) -> None:
    tokens = await make_tokens(api.settings)
    async with api.client(None) as client:
        headers = {"Authorization": f"Bearer {tokens[Scope.read]}"}
        assert (await client.get("/v1/flows", headers=headers)).status_code == 200
        ident = tokens[Scope.read].split("_")[1]
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            assert await TokenStore(redis, api.settings.key_prefix).revoke(ident)
        finally:
            await redis.aclose()
        assert (await client.get("/v1/flows", headers=headers)).status_code == 401
