"""The Statusek surface over the embedded backends (``memory://``), in process: the same
session, rules, concurrency and authentication as over the real ones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from orch_serv.api.app import create_app
from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.settings import Settings
from orch_serv.store.embedded import embedded_client
from tests.api.test_statusek_session import call, create

TASK = "2-POINT LINE TASK"


@pytest.fixture
async def clients() -> AsyncIterator[dict[Scope | None, httpx.AsyncClient]]:
    """A client per scope (and one without a token) of an in-process app."""
    name = f"memory://sk-{uuid.uuid4().hex}"
    settings = Settings(amqp_url=name, redis_url=name, namespace="sk", key_prefix="sk")
    app = create_app(settings)
    redis = embedded_client(name)
    tokens = TokenStore(redis, settings.key_prefix)
    made = {scope: (await tokens.create(scope.value, {scope}))[0] for scope in Scope}
    await redis.aclose()
    transport = httpx.ASGITransport(app=app)
    found: dict[Scope | None, httpx.AsyncClient] = {
        scope: httpx.AsyncClient(
            transport=transport,
            base_url="http://embedded",
            headers={} if scope is None else {"Authorization": f"Bearer {made[scope]}"},
        )
        for scope in [*Scope, None]
    }
    try:
        yield found
    finally:
        for client in found.values():
            await client.aclose()
        await app.state.ctx.backends.close()


async def test_complex_logic(clients: dict[Scope | None, httpx.AsyncClient]) -> None:
    client = clients[Scope.admin]
    token = await create(client)
    body = {"instance_token": token}
    assert (await call(client, "event/getEvents", body))["events"] == []
    early = await call(client, "status/setStatus", {**body, "status_name": "FINISHED"})
    assert early["message"] == "Not all previos mandatory statuses are set for status 'FINISHED'"
    for name in ("STARTED", "FINISHED"):
        assert (await call(client, "status/setStatus", {**body, "status_name": name}))["status"]
    finished = await call(client, "instance/checkIsFinished", body)
    assert finished["instanse_is_finished_description"] == "ALL_MANDATORY_STATUSES_ARE_SET"
    events = (await call(client, "event/getEvents", body))["events"]
    assert [e["Status"]["StatusName"] for e in events] == ["STARTED", "FINISHED"]


async def test_timeout_and_parsing(clients: dict[Scope | None, httpx.AsyncClient]) -> None:
    client = clients[Scope.admin]
    token = await create(client, timeout=0)
    refused = await call(
        client, "status/setStatus", {"instance_token": token, "status_name": "STARTED"}
    )
    assert refused["message"] == f"Instance '{token}' is finished by 'TIMEOUT'"
    bad = await client.post("/statusek/status/setStatus", content=b"{")
    assert bad.status_code == 200 and bad.json()["message"] == "Error while parameters parsing"


async def test_concurrent_sets(clients: dict[Scope | None, httpx.AsyncClient]) -> None:
    client = clients[Scope.operate]
    token = await create(clients[Scope.start])
    answers = await asyncio.gather(
        *(
            call(client, "status/setStatus", {"instance_token": token, "status_name": "STARTED"})
            for _ in range(50)
        )
    )
    assert sum(a["status"] for a in answers) == 1


async def test_auth(clients: dict[Scope | None, httpx.AsyncClient]) -> None:
    missing = await clients[None].post("/statusek/instance/create", json={"object_name": TASK})
    assert missing.status_code == 401 and missing.json()["status"] is False
    wrong = await clients[Scope.read].post("/statusek/instance/create", json={"object_name": TASK})
    assert wrong.status_code == 403


@pytest.mark.parametrize("auth", [True, False])
async def test_redis_down_is_503_with_the_reason(auth: bool) -> None:
    settings = Settings(
        amqp_url="memory://down", redis_url="redis://127.0.0.1:1/0", namespace="d", key_prefix="d"
    )
    app = create_app(settings, auth=auth)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": "Bearer osk_a_b"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            response = await client.post(
                "/statusek/instance/create", json={"object_name": TASK}, headers=headers
            )
    finally:
        await app.state.ctx.backends.close()
    assert response.status_code == 503
    document = response.json()
    assert document["status"] is False
    assert document["message"].startswith("Database error: 'cannot connect to Redis")
