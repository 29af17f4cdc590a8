"""Many machines PUTting at once, over HTTP against a real server and straight against the
real Redis: each PUT is one compare-and-set, so N PUTs of the current state move its counter
exactly N times (as long as it is current) and the chart exactly once per reached target."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from orch_serv.api.tokens import Scope
from orch_serv.charts import parse_chart
from orch_serv.constants import EventKind
from orch_serv.store.charts import Answer, ChartStore
from orch_serv.store.redis import RedisRunStore
from tests.api.server import ApiServer
from tests.charts.stateservice_app import stateservice_server
from tests.conftest import REDIS_URL, unique_name

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CLIENTS = 40
CHART = f"""\
current_state: green
states:
  - name: green
    func: increment
    current: {{key: count, value: 0}}
    target: {{name: red, when: {{key: count, value: {CLIENTS}}}}}
  - name: red
    func: increment
    current: {{key: count, value: 0}}
    target: {{name: blue, when: {{key: count, value: 10}}}}
  - name: blue
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server() -> AsyncIterator[ApiServer]:
    """The surface with authentication on."""
    async with stateservice_server() as server:
        yield server


async def put_all(server: ApiServer, state: str) -> Counter[int]:
    """CLIENTS clients, each on its own connection, PUT ``state`` at the same time."""
    clients = [server.client(Scope.operate) for _ in range(CLIENTS)]
    start = asyncio.Event()

    async def one(client: httpx.AsyncClient) -> int:
        async with client:
            await start.wait()
            response = await client.put(
                "/stateservice/state", params={"chart": "race", "state": state}
            )
            return response.status_code

    tasks = [asyncio.create_task(one(c)) for c in clients]
    await asyncio.sleep(0)  # let every task reach the gate before opening it
    start.set()
    return Counter(await asyncio.gather(*tasks))


async def test_concurrent_puts_over_http(server: ApiServer) -> None:
    async with server.client(Scope.admin) as admin:
        assert (await admin.put("/stateservice/charts/race", content=CHART)).status_code == 201
        assert await put_all(server, "green") == {200: CLIENTS}
        machine = (await admin.get("/stateservice/charts/race/machines/default")).json()
        assert machine["state"] == "red"
        assert machine["counters"]["green"]["value"] == CLIENTS
        # red moves on at 10: ten PUTs count, the rest find red is no longer current
        assert await put_all(server, "red") == {200: 10, 406: CLIENTS - 10}
        machine = (await admin.get("/stateservice/charts/race/machines/default")).json()
        assert (machine["state"], machine["counters"]["red"]["value"]) == ("blue", 10)
        events = (await admin.get("/v1/runs/race@default/events?limit=500")).json()["events"]
    kinds = Counter(e["kind"] for e in events)
    assert kinds["heartbeat"] == CLIENTS + 10  # one per counted PUT
    assert kinds["step_completed"] == 2 and kinds["run_succeeded"] == 1  # once per target


async def test_concurrent_puts_on_the_store() -> None:
    prefix = unique_name("race")
    stores = [await RedisRunStore.connect(REDIS_URL, prefix=prefix) for _ in range(20)]
    try:
        charts = [ChartStore.of(s) for s in stores]
        total = 200
        chart = parse_chart(CHART.replace(f"value: {CLIENTS}", f"value: {total}"), name="race")
        await charts[0].save(chart)
        await charts[0].create_machine(chart)
        answers = await asyncio.gather(
            *(charts[i % 20].put("race", "default", "green") for i in range(total + 50))
        )
        counted = sorted(a.counted for a in answers if a.counted is not None)
        assert counted == list(range(1, total + 1))  # every count exactly once
        assert sum(a.answer is Answer.NOT_CURRENT for a in answers) == 50
        events = await stores[0].get_events("race@default")
        assert sum(e.kind is EventKind.STEP_COMPLETED for e in events) == 1
        assert (await charts[0].machine("race")).state == "red"
    finally:
        keys = [k async for k in stores[0].redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await stores[0].redis.delete(*keys)
        for store in stores:
            await store.close()
