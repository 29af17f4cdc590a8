"""Wait steps over the real servers: ``POST /v1/runs/{id}/signals/{name}`` on a real
``orch-serv api`` lets a waiting run through, a StateService ``PUT /state`` moves the chart a
flow waits for; every bad signal is a 4xx problem that keeps nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from orch_serv.api.tokens import Scope
from orch_serv.orchestrator.app import Running
from tests.api.server import ApiServer, api_server
from tests.api.v1_support import UNKNOWN_RUN, finished, problem, start
from tests.apps.waits import LIGHTS, orchestrator
from tests.conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class Env:
    server: ApiServer
    running: Running


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    async with api_server(stem="v1sig") as server:
        settings = server.settings.model_copy(
            update={"shutdown_grace_seconds": 5, "log_level": "WARNING"}
        )
        async with orchestrator.run(settings, with_services=True) as running:
            yield Env(server, running)


async def at_wait(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """The run's document once it waits at step 1."""

    async def waiting() -> dict[str, Any] | None:
        document: dict[str, Any] = (await client.get(f"/v1/runs/{run_id}")).json()
        return document if document["step"] == 1 and document["state"] == "RUNNING" else None

    result: dict[str, Any] = await eventually(waiting)
    return result


async def history(client: httpx.AsyncClient, run_id: str) -> list[str]:
    response = await client.get(f"/v1/runs/{run_id}/events")
    assert response.status_code == 200, response.text
    return [e["kind"] for e in response.json()["events"]]


async def test_a_signal_over_http_lets_the_run_through(env: Env) -> None:
    async with env.server.client() as client:
        run_id = await start(client, "approval", {"doc": 1})
        document = await at_wait(client, run_id)
        assert document["step_name"] == "wait_approved"
        waiting = document["waiting"]  # in no queue: the orchestrators check it
        assert (waiting["role"], waiting["condition"]) == ("wait", "signal 'approved'")
        assert waiting["hint"] is None
        response = await client.post(
            f"/v1/runs/{run_id}/signals/approved", json={"data": {"by": "ops"}}
        )
        assert response.status_code == 200, response.text
        assert response.json()["id"] == run_id
        final = await finished(client, run_id)
        assert final["state"] == "SUCCEEDED" and final["result"] == {"released": {"by": "ops"}}
        kinds = await history(client, run_id)
    assert kinds.count("signal_received") == 1 and kinds.count("step_completed") == 3


async def test_a_bare_signal_without_a_body(env: Env) -> None:
    async with env.server.client() as client:
        run_id = await start(client, "approval", {"doc": 2})
        await at_wait(client, run_id)
        assert (await client.post(f"/v1/runs/{run_id}/signals/approved")).status_code == 200
        final = await finished(client, run_id)
    assert final["result"] == {"released": {"doc": 2, "prepared": True}}


async def test_bad_signals_are_refused_and_keep_nothing(env: Env) -> None:
    async with env.server.client() as client:
        problem(await client.post(f"/v1/runs/{UNKNOWN_RUN}/signals/approved"), 404)
        run_id = await start(client, "approval", {"doc": 3})
        await at_wait(client, run_id)
        url = f"/v1/runs/{run_id}/signals"
        problem(await client.post(f"{url}/bad%20name"), 422)
        problem(await client.post(f"{url}/{'x' * 129}"), 422)
        problem(await client.post(f"{url}/approved", json={"data": 2**70}), 422)
        problem(await client.post(f"{url}/approved", json={"date": 1}), 422)
        problem(await client.post(f"{url}/approved", json=[1]), 422)
        bad_json = await client.post(
            f"{url}/approved", content=b"{nope", headers={"content-type": "application/json"}
        )
        problem(bad_json, 400)
        async with env.server.client(Scope.read) as reader:
            problem(await reader.post(f"{url}/approved"), 403)
        assert "signal_received" not in await history(client, run_id)
        assert (await client.get(f"/v1/runs/{run_id}")).json()["state"] == "RUNNING"
        assert (await client.post(f"/v1/runs/{run_id}/cancel")).status_code == 200
        finished_problem = problem(await client.post(f"{url}/approved"), 409)
    assert "takes no signal" in finished_problem["detail"]


async def test_a_flow_waits_for_a_chart_moved_by_stateservice_puts(env: Env) -> None:
    async with env.server.client() as client:
        assert (await client.put("/stateservice/charts/lights", content=LIGHTS)).status_code in (
            200,
            201,
        )
        assert (await client.put("/stateservice/charts/lights/machines/m1")).status_code == 201
        run_id = await start(client, "rollout", {"doc": 4})
        waiting = (await at_wait(client, run_id))["waiting"]
        assert waiting["condition"] == "chart 'lights' machine 'm1' in red_state or blue_state"
        params = {"state": "green_state", "chart": "lights", "machine": "m1"}
        assert (await client.put("/stateservice/state", params=params)).status_code == 200
        assert (await client.get(f"/v1/runs/{run_id}")).json()["step"] == 1  # one of two
        assert (await client.put("/stateservice/state", params=params)).status_code == 200
        final = await finished(client, run_id)
    assert final["state"] == "SUCCEEDED"
    assert final["result"] == {"released": {"doc": 4, "prepared": True}}
