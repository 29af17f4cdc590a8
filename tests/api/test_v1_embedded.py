"""The ``/v1`` endpoints over the embedded backends (``memory://``: fakeredis and the
in-process broker), as ``orch-serv dev`` serves them: the app in process, an orchestrator
on the same backends, no sockets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from orch_serv.api import create_app
from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.settings import Settings
from tests.api.v1_support import FLOWS, ORCHESTRATOR, finished, problem, start

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    url = f"memory://{uuid.uuid4().hex}"
    settings = Settings(
        amqp_url=url,
        redis_url=url,
        namespace="embedded",
        key_prefix="embedded",
        shutdown_grace_seconds=5,
        log_level="WARNING",
    )
    app = create_app(settings)
    async with (
        ORCHESTRATOR.run(settings, with_services=True),
        app.router.lifespan_context(app),
    ):
        store = await app.state.ctx.backends.store()
        token, _ = await TokenStore(store.redis, settings.key_prefix).create(
            "embedded", {Scope.admin}
        )
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://embedded", headers=headers
        ) as http:
            yield http


async def test_start_get_and_list(client: httpx.AsyncClient) -> None:
    run_id = await start(client, "pipeline", {"n": 2}, key="embedded-key")
    again = await client.post(
        "/v1/runs", json={"flow": "pipeline", "body": {}, "key": "embedded-key"}
    )
    final = await finished(client, run_id)
    listed = (await client.get("/v1/runs", params={"flow": "pipeline"})).json()
    assert again.status_code == 200 and again.json()["id"] == run_id
    assert final["result"] == {"n": 2, "trail": ["one", "two", "three"]}
    assert [r["id"] for r in listed["runs"]] == [run_id]
    assert listed["runs"][0] == final


async def test_events_and_their_stream(client: httpx.AsyncClient) -> None:
    run_id = await start(client, "pipeline", {"n": 1})
    await finished(client, run_id)
    events = (await client.get(f"/v1/runs/{run_id}/events")).json()["events"]
    stream = await client.get(f"/v1/runs/{run_id}/events/stream", headers={"Last-Event-ID": "2"})
    ids = [line.removeprefix("id: ") for line in stream.text.splitlines() if line.startswith("id:")]
    assert ids == [str(e["seq"]) for e in events[2:]]
    assert stream.text.rstrip().splitlines()[-2] == "event: end"


async def test_flows_and_errors(client: httpx.AsyncClient) -> None:
    flows = (await client.get("/v1/flows")).json()["flows"]
    unknown = await client.post("/v1/runs", json={"flow": "nope"})
    conflict_key = f"k-{uuid.uuid4().hex}"
    await start(client, "pipeline", {"n": 1}, key=conflict_key)
    conflict = await client.post("/v1/runs", json={"flow": "stuck", "key": conflict_key})
    assert sorted(f["name"] for f in flows if f["kind"] == "flow") == FLOWS
    assert problem(unknown, 404)["known"] == FLOWS
    problem(conflict, 409)


async def test_dead_letters_and_retry(client: httpx.AsyncClient) -> None:
    letters = await client.get("/v1/deadletters")
    purge = await client.post("/v1/deadletters/purge", json={"all": True})
    run_id = await start(client, "pipeline", {"n": 1})
    await finished(client, run_id)
    retry = await client.post(f"/v1/runs/{run_id}/retry")
    assert letters.status_code == 200 and letters.json() == {"dead_letters": []}
    assert purge.json() == {"purged": 0}
    problem(retry, 409)
