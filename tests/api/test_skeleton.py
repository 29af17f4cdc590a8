"""The server's frame: probes, authentication, problem documents, the body limit."""

from __future__ import annotations

import pytest

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_healthz_needs_no_token(api: ApiServer) -> None:
    async with api.client(None) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_backend(api: ApiServer) -> None:
    async with api.client(Scope.read) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "ok", "rabbitmq": "ok"}


async def test_openapi_is_served(api: ApiServer) -> None:
    async with api.client(None) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "orch_serv"


async def test_unknown_route_is_a_problem_document(api: ApiServer) -> None:
    async with api.client(Scope.read) as client:
        response = await client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_oversized_body_is_413(api: ApiServer) -> None:
    async with api.client(Scope.admin) as client:
        response = await client.post(
            "/v1/runs",
            content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["title"] == "Content Too Large"
