"""The native status-model routes (``orch_serv.api.models_v1``), in process over the
embedded backends: list, get (by version), publish, and their errors as problem documents."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from orch_serv.api import problems
from orch_serv.api.app import install_auth_errors
from orch_serv.api.context import ApiContext, Backends
from orch_serv.api.models_v1 import router
from orch_serv.settings import Settings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    name = f"memory://models-{uuid.uuid4().hex}"
    settings = Settings(amqp_url=name, redis_url=name, namespace="m", key_prefix="m")
    ctx = ApiContext(settings, Backends(settings), auth=False)
    app = FastAPI()
    problems.install(app)
    install_auth_errors(app)
    app.include_router(router(ctx), prefix="/v1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as http:
        yield http
    await ctx.backends.close()


async def test_list_get_and_publish(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/v1/models")).json()
    assert [m["name"] for m in listed] == ["2-POINT LINE TASK"]
    body = {"statuses": [{"name": "A"}, {"name": "B", "type": "STOP-STATUS", "after": ["A"]}]}
    put = await client.put("/v1/models/ORDER", json=body)
    assert put.status_code == 200
    first = put.json()
    assert first["statuses"][1]["type"] == "STOP" and len(first["version"]) == 12
    await client.put("/v1/models/ORDER", json={"statuses": [{"name": "A"}]})
    current = (await client.get("/v1/models/ORDER")).json()
    assert current["version"] != first["version"]
    pinned = await client.get("/v1/models/ORDER", params={"version": first["version"]})
    assert pinned.json() == first
    assert [m["name"] for m in (await client.get("/v1/models")).json()] == [
        "2-POINT LINE TASK",
        "ORDER",
    ]


async def test_errors_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/models/NOPE")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "status model 'NOPE' is not published"
    bad = await client.put("/v1/models/X", json={"statuses": [{"name": "A", "after": ["Z"]}]})
    assert bad.status_code == 422
    assert bad.json()["detail"] == "model: status 'A' follows unknown status 'Z'"
    clash = await client.put("/v1/models/X", json={"name": "Y", "statuses": [{"name": "A"}]})
    assert clash.status_code == 422
    typed = await client.put("/v1/models/X", json={"statuses": [{"name": "A", "type": "NOPE"}]})
    assert typed.status_code == 422 and "unknown status type" in typed.json()["detail"]
    not_json = await client.put(
        "/v1/models/X", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
