"""A crash of the API between requests loses nothing: the position and the counters are in
Redis after every answer, so a server SIGKILLed and started again (or another replica) goes
on where the last one stopped."""

from __future__ import annotations

import pytest

from orch_serv.api.tokens import Scope
from tests.charts.stateservice_app import stateservice_server
from tests.charts.test_loader import SEED
from tests.conftest import cleanup, unique_name

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_a_killed_server_loses_nothing() -> None:
    names = unique_name("ssk"), unique_name("ssk")
    counted = SEED.replace("value: 1", "value: 2", 1)  # green moves on at the second PUT
    try:
        async with stateservice_server(names=names, clean=False) as first:
            async with first.client(Scope.admin) as client:
                assert (await client.put("/stateservice/charts/s", content=counted)).is_success
                response = await client.put("/state", params={"state": "green_state"})
                assert response.status_code == 200
            assert first.process is not None
            first.process.kill()  # SIGKILL between two requests
            await first.process.wait()
        async with (
            stateservice_server(names=names, clean=False) as second,
            second.client(Scope.admin) as client,
        ):
            machine = (await client.get("/stateservice/charts/s/machines/default")).json()
            assert machine["counters"]["green_state"]["value"] == 1
            response = await client.put("/state", params={"state": "green_state"})
            assert response.status_code == 200
            response = await client.get("/state", params={"state": "red_state"})
            assert (response.status_code, response.text) == (200, "red_state")
    finally:
        await cleanup(*names)
