"""Handlers' statuses under their flow's status model, and instances finished by the
orchestrators' timer loop, on the real RabbitMQ and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, HandlerContext, Orchestrator, Service
from orch_serv.constants import EventKind, RunState
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.statusmodel import TWO_POINT_LINE_TASK, Status, StatusModel
from orch_serv.store.base import Event
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.statuses import StatusStore
from tests.conftest import eventually

pytestmark = pytest.mark.integration

SHIPPING = StatusModel(
    "SHIPPING",
    statuses=[Status("A"), Status("B", after=["A"]), Status("C", after=["B"])],
)

work = Service("work")


@work.command("ship")
async def ship(body: dict[str, int], ctx: HandlerContext) -> dict[str, int]:
    """Sets statuses whose fate does not depend on the order they are handled in."""
    await ctx.status("A", message="first")
    await ctx.status("A", message="again")  # one of the two is refused: already set
    await ctx.status("WRONG")  # not in the model
    await ctx.status("C")  # B is never set
    return body


class Ship(Block):
    name_block = "ship"
    service = "work"


class Shipping(Flow):
    name_flow = "shipping"
    steps_flow = FlowBuilder(FlowBlock(Ship))
    status_model = SHIPPING


class Free(Flow):
    name_flow = "free"
    steps_flow = FlowBuilder(FlowBlock(Ship))


@pytest.fixture
async def running(settings: Settings) -> AsyncIterator[Running]:
    app = Orchestrator(flows=[Shipping, Free], services=[work])
    async with app.run(settings, with_services=True) as running:
        yield running


def test_the_flow_names_its_model_and_the_orchestrator_publishes_it() -> None:
    assert Shipping.spec().status_model == "SHIPPING" and Free.spec().status_model is None
    assert Orchestrator(flows=[Shipping, Free], services=[work]).status_models == [SHIPPING]
    with pytest.raises(ValueError, match="two different status models are called 'SHIPPING'"):
        other = StatusModel("SHIPPING", statuses=[Status("Z")])
        Orchestrator(flows=[Shipping], status_models=[other])
    with pytest.raises(TypeError, match="StatusModel instances"):
        Orchestrator(flows=[Free], status_models=["SHIPPING"])  # type: ignore[list-item]


async def test_handler_statuses_are_held_to_the_model(running: Running) -> None:
    run_id = await running.start("shipping", {"n": 1})
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    store = running.store
    assert isinstance(store, RedisRunStore)
    assert await StatusStore(store).models.get("SHIPPING") == SHIPPING  # published

    async def settled() -> list[Event]:
        events = await running.events(run_id)
        seen = [e for e in events if e.kind in (EventKind.STATUS, EventKind.STATUS_REFUSED)]
        return seen if len(seen) == 4 else []

    events = await eventually(settled)
    accepted = [e for e in events if e.kind is EventKind.STATUS]
    refused = sorted((e.name, e.reason) for e in events if e.kind is EventKind.STATUS_REFUSED)
    assert [e.name for e in accepted] == ["A"]
    assert refused == [
        ("A", "STATUS_IS_ALREADY_SET"),
        ("C", "NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET"),
        ("WRONG", "STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT"),
    ]
    assert (await running.get(run_id)).statuses == frozenset({"A"})


async def test_a_flow_without_a_model_records_every_status(running: Running) -> None:
    run_id = await running.start("free", {"n": 1})
    await running.wait(run_id, timeout=30)

    async def settled() -> list[Event]:
        events = [e for e in await running.events(run_id) if e.kind is EventKind.STATUS]
        return events if len(events) == 4 else []

    assert sorted(e.name for e in await eventually(settled)) == ["A", "A", "C", "WRONG"]


async def test_the_timer_loop_times_an_instance_out(running: Running) -> None:
    store = running.store
    assert isinstance(store, RedisRunStore)
    token = await StatusStore(store).create(TWO_POINT_LINE_TASK, 0)

    async def timed_out() -> list[EventKind]:  # nobody reads it: the deadline timer fires
        kinds = [e.kind for e in await store.get_events(token)]
        return kinds if EventKind.RUN_TIMED_OUT in kinds else []

    assert await eventually(timed_out) == [EventKind.RUN_CREATED, EventKind.RUN_TIMED_OUT]
    assert (
        await store.redis.zscore(store.keys.of_run(token).state_index("TIMED_OUT"), token)
        is not None
    )
    outcome = await StatusStore(store).touch(token)
    assert outcome.finished == "TIMEOUT"
