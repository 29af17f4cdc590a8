"""The StateService surface's answers over a real server: the status codes of the issue (and
their reasons), the JSON endpoints of charts and machines, bad charts refused with the file,
line and field and nothing stored, and a machine's history through the native ``/v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from orch_serv.charts.yamltext import MAX_CHART_BYTES
from tests.api.server import ApiServer
from tests.charts.stateservice_app import stateservice_server
from tests.charts.test_loader import SEED
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TIMED = """\
current_state: wait
states:
  - name: wait
    func: time
    target: {name: go, when: {key: time, value: 'AT'}}
  - name: go
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server() -> AsyncIterator[ApiServer]:
    """The surface with authentication on (an admin token does everything)."""
    async with stateservice_server() as server:
        yield server


async def keys(server: ApiServer, pattern: str) -> list[bytes]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return [k async for k in client.scan_iter(match=f"{server.settings.key_prefix}:{pattern}")]
    finally:
        await client.aclose()


async def test_missing_state_is_400_and_no_chart_is_404(server: ApiServer) -> None:
    async with server.client() as client:
        for method in ("GET", "PUT"):
            response = await client.request(method, "/stateservice/state")
            assert response.status_code == 400
            assert response.text.startswith("missing query parameter: state")
            response = await client.request(method, "/stateservice/state?state=")
            assert response.status_code == 400
        response = await client.get("/stateservice/state", params={"state": "a", "chart": "zz"})
        assert (response.status_code, response.text) == (404, "no chart named 'zz'\n")
        response = await client.get("/stateservice/state", params={"state": "a", "chart": "a@b"})
        assert response.status_code == 400 and "not a valid chart name" in response.text


async def test_charts_and_machines_as_json(server: ApiServer) -> None:
    async with server.client() as client:
        response = await client.put("/stateservice/charts/deploy", content=SEED)
        assert response.status_code == 201
        loaded = response.json()
        assert loaded["default_machine_created"] is True and loaded["replaced_version"] is None
        assert loaded["current_state"] == "green_state" and len(loaded["states"]) == 3
        again = await client.put("/stateservice/charts/deploy", content=SEED)
        assert again.status_code == 200
        assert again.json()["replaced_version"] == loaded["version"]
        assert again.json()["default_machine_created"] is False
        assert (await client.get("/stateservice/charts/deploy")).json()["version"] == (
            loaded["version"]
        )
        names = [c["name"] for c in (await client.get("/stateservice/charts")).json()]
        assert "deploy" in names

        created = await client.put("/stateservice/charts/deploy/machines/web-1")
        assert created.status_code == 201
        assert created.json()["state"] == "green_state"
        assert (await client.put("/stateservice/charts/deploy/machines/web-1")).status_code == 200
        put = await client.put(
            "/stateservice/state",
            params={"chart": "deploy", "machine": "web-1", "state": "green_state"},
        )
        assert (put.status_code, put.text) == (200, "green_state")
        machine = (await client.get("/stateservice/charts/deploy/machines/web-1")).json()
        assert machine["state"] == "red_state" and machine["run_id"] == "deploy@web-1"
        assert machine["counters"]["green_state"] == {"key": "count", "value": 1, "target": 1}
        assert machine["ended"] is False and machine["run_state"] == "RUNNING"
        default = (await client.get("/stateservice/charts/deploy/machines/default")).json()
        assert default["state"] == "green_state"
        listed = (await client.get("/stateservice/charts/deploy/machines")).json()
        assert {m["machine"] for m in listed} == {"default", "web-1"}
        reset = await client.put(
            "/stateservice/charts/deploy", params={"reset": True}, content=SEED
        )
        assert reset.json()["default_machine_created"] is True
        assert (await client.delete("/stateservice/charts/deploy/machines/web-2")).status_code == (
            404
        )
        assert (await client.put("/stateservice/charts/deploy/machines/web-2")).status_code == 201
        assert (await client.delete("/stateservice/charts/deploy/machines/web-2")).status_code == (
            204
        )
        assert (await client.delete("/stateservice/charts/zz/machines/web-2")).status_code == 404
        missing = await client.get("/stateservice/charts/deploy/machines/web-9")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert (await client.get("/stateservice/charts/nope/machines")).status_code == 404
        assert (await client.put("/stateservice/charts/nope/machines/x")).status_code == 404

        # the machine is a run: its history is there for /v1 (and `orch-serv status`)
        run = (await client.get("/v1/runs/deploy@web-1")).json()
        assert (run["kind"], run["flow"], run["step_name"]) == ("chart", "deploy", "red_state")
        events = (await client.get("/v1/runs/deploy@web-1/events")).json()
        kinds = [e["kind"] for e in events["events"]]
        assert kinds == ["run_created", "status", "heartbeat", "step_completed", "status"]


async def test_end_and_time_states_are_409_with_a_reason(server: ApiServer) -> None:
    later = (datetime.now(UTC) + timedelta(days=365)).replace(microsecond=0)
    async with server.client() as client:
        await client.put(
            "/stateservice/charts/later", content=TIMED.replace("AT", later.isoformat())
        )
        params = {"chart": "later", "state": "wait"}
        assert (await client.get("/stateservice/state", params=params)).status_code == 200
        response = await client.put("/stateservice/state", params=params)
        assert response.status_code == 409
        assert response.text == (
            f"'wait' is a time state: it moves on by itself at {later.isoformat()}, not by PUT\n"
        )
        machine = (await client.get("/stateservice/charts/later/machines/default")).json()
        assert machine["due"] == later.isoformat()
        past = TIMED.replace("AT", "2020-01-01T00:00:00Z")
        await client.put("/stateservice/charts/past", content=past)
        params = {"chart": "past", "state": "go"}
        assert (await client.get("/stateservice/state", params=params)).status_code == 200
        response = await client.put("/stateservice/state", params=params)
        assert (response.status_code, response.text) == (
            409,
            "'go' is an end state: the machine has ended\n",
        )


async def test_a_bad_chart_is_400_with_line_and_field_and_nothing_is_stored(
    server: ApiServer,
) -> None:
    bad = SEED.replace("name: red_state\n      when", "name: purple\n      when")
    async with server.client() as client:
        response = await client.put("/stateservice/charts/broken", content=bad)
        assert response.status_code == 400
        assert response.json()["detail"].startswith(
            "PUT /charts/broken:9: states[0].target.name: 'purple' is not a state of this chart"
        )
        unsafe = "current_state: !!python/object/apply:os.system ['true']\nstates: []\n"
        response = await client.put("/stateservice/charts/broken", content=unsafe)
        assert response.status_code == 400 and "is not allowed" in response.json()["detail"]
        huge = b"#" * (MAX_CHART_BYTES + 1)
        assert (await client.put("/stateservice/charts/broken", content=huge)).status_code == 413
        assert (await client.get("/stateservice/charts/broken")).status_code == 404
        bad_name = await client.put("/stateservice/charts/a@b", content=SEED)
        assert bad_name.status_code == 400
    assert await keys(server, "*broken*") == []
