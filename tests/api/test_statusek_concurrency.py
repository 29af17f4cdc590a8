"""Many clients setting statuses of one instance at once (50 concurrent HTTP requests): each
status is recorded once, the model's rules hold, and the instance finishes once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from orch_serv.api.tokens import Scope
from orch_serv.constants import EventKind
from orch_serv.statusmodel import Status, StatusModel
from orch_serv.store.redis import RedisRunStore
from tests.api.server import ApiServer
from tests.api.test_statusek_session import call, create, publish
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CLIENTS = 50
WIDE = StatusModel("WIDE", statuses=[Status(f"S{i}") for i in range(10)])
CHAIN = StatusModel(
    "CHAIN",
    statuses=[Status("C0"), *(Status(f"C{i}", after=[f"C{i - 1}"]) for i in range(1, 10))],
)


async def _set_all(api: ApiServer, token: str, names: list[str]) -> list[dict[str, Any]]:
    async with api.client(Scope.operate) as client:
        return list(
            await asyncio.gather(
                *(
                    call(client, "status/setStatus", {"instance_token": token, "status_name": n})
                    for n in names
                )
            )
        )


async def _history(api: ApiServer, token: str) -> list[EventKind]:
    store = await RedisRunStore.connect(REDIS_URL, prefix=api.settings.key_prefix)
    try:
        return [e.kind for e in await store.get_events(token)]
    finally:
        await store.close()


async def test_one_status_from_many_clients_is_recorded_once(api: ApiServer) -> None:
    async with api.client(Scope.start) as client:
        token = await create(client)
    answers = await _set_all(api, token, ["STARTED"] * CLIENTS)
    assert sum(a["status"] for a in answers) == 1
    refused = {a["message"] for a in answers if not a["status"]}
    assert refused == {f"Status 'STARTED' is already set for instance '{token}'"}
    async with api.client(Scope.read) as client:
        events = (await call(client, "event/getEvents", {"instance_token": token}))["events"]
    assert [e["Status"]["StatusName"] for e in events] == ["STARTED"]


async def test_the_last_mandatory_statuses_at_once_finish_once(api: ApiServer) -> None:
    await publish(api, WIDE)
    async with api.client(Scope.start) as client:
        token = await create(client, "WIDE")
    names = [s.name for s in WIDE.statuses] * (CLIENTS // len(WIDE.statuses))
    random.Random(7).shuffle(names)
    answers = await _set_all(api, token, names)
    assert sum(a["status"] for a in answers) == len(WIDE.statuses)
    for answer in answers:
        if not answer["status"]:
            assert answer["message"].endswith(
                (f"is already set for instance '{token}'", "by 'ALL_MANDATORY_STATUSES_ARE_SET'")
            )
    async with api.client(Scope.read) as client:
        events = (await call(client, "event/getEvents", {"instance_token": token}))["events"]
        finished = await call(client, "instance/checkIsFinished", {"instance_token": token})
    assert sorted(e["Status"]["StatusName"] for e in events) == sorted(WIDE.mandatory)
    assert finished["data"]["instanse_is_finished_description"] == (
        "ALL_MANDATORY_STATUSES_ARE_SET"
    )
    kinds = await _history(api, token)
    assert kinds.count(EventKind.RUN_SUCCEEDED) == 1 and kinds[-1] is EventKind.RUN_SUCCEEDED


async def test_the_rules_hold_under_concurrency(api: ApiServer) -> None:
    await publish(api, CHAIN)
    async with api.client(Scope.start) as client:
        token = await create(client, "CHAIN")
    names = [s.name for s in CHAIN.statuses] * (CLIENTS // len(CHAIN.statuses))
    random.Random(11).shuffle(names)
    for _ in range(len(CHAIN.statuses)):  # rounds of 50 until the chain is complete
        await _set_all(api, token, names)
        async with api.client(Scope.read) as client:
            events = (await call(client, "event/getEvents", {"instance_token": token}))["events"]
        recorded = [e["Status"]["StatusName"] for e in events]
        # each status once, and only after its predecessor: a prefix of the chain, in order
        assert recorded == [f"C{i}" for i in range(len(recorded))]
        if len(recorded) == len(CHAIN.statuses):
            break
    assert len(recorded) == len(CHAIN.statuses)
