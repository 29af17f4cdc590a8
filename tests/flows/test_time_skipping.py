"""The test kit proves timeouts and minutes of retry back-off in virtual time: no servers,
no waiting for the wall clock."""

from __future__ import annotations

import asyncio
from typing import Any

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator, Service
from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.exceptions import HandlerError
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.testing import KitFactory

calls: dict[str, int] = {}
shop = Service("shop")


@shop.command("pay")
async def pay(body: dict[str, Any]) -> dict[str, Any]:
    """Fails twice (a payment gateway having a bad few minutes), then succeeds."""
    calls["pay"] = calls.get("pay", 0) + 1
    if calls["pay"] < 3:
        raise HandlerError("gateway unavailable", type="GatewayDown")
    return {**body, "paid": True}


@shop.command("ship")
async def ship(body: dict[str, Any]) -> dict[str, Any]:
    """Never answers on its own: only a timeout ends it."""
    await asyncio.Event().wait()
    return body


class Pay(Block):
    name_block = "pay"
    service = "shop"


class Ship(Block):
    name_block = "ship"
    service = "shop"


class Checkout(Flow):
    name_flow = "checkout"
    steps_flow = FlowBuilder(
        FlowBlock(
            Pay, retry=RetryPolicy(max_attempts=3, initial_delay=300, backoff=2, max_delay=3600)
        ),
    )


class Delivery(Flow):
    name_flow = "delivery"
    steps_flow = FlowBuilder(FlowBlock(Ship, timeouts=Timeouts(execution=1800)))


class Abandoned(Flow):
    name_flow = "abandoned"
    deadline = 24 * 3600.0
    steps_flow = FlowBuilder(FlowBlock(Ship))


app = Orchestrator(flows=[Checkout, Delivery, Abandoned], services=[shop])


async def test_retry_back_off_of_minutes_is_skipped(orch_serv_kit: KitFactory) -> None:
    calls.clear()
    kit = await orch_serv_kit(app)
    started = kit.clock()
    record = await kit.run("checkout", {"order": 7})
    assert record.state is RunState.SUCCEEDED and record.result == {"order": 7, "paid": True}
    assert calls["pay"] == 3
    events = await kit.events(record.run_id)
    delays = [e.body["delay"] for e in events if e.kind is EventKind.RETRY_SCHEDULED]
    assert delays == [300.0, 600.0]  # five, then ten minutes of back-off
    assert kit.clock() - started >= 900  # virtual time moved over them
    await kit.assert_history(
        record.run_id,
        [
            "step_failed",
            "retry_scheduled",
            "step_dispatched",
            "step_failed",
            "retry_scheduled",
            "step_dispatched",
            "step_completed",
            "run_succeeded",
        ],
    )


async def test_a_step_timeout_fires_when_the_clock_is_advanced(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("delivery", {"order": 8})
    await kit.until(run_id, lambda r: r.phase is Phase.STARTED, skip_time=False)
    await kit.advance(1799)  # not yet
    assert (await kit.running.get(run_id)).state is RunState.RUNNING
    kit.clock.advance(2)
    record = await kit.wait(run_id)
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "ExecutionTimeout"


async def test_a_run_deadline_of_a_day(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("abandoned", {})
    await kit.until(run_id, lambda r: r.phase is Phase.DISPATCHED, skip_time=False)
    kit.clock.advance(24 * 3600)
    record = await kit.wait(run_id)
    assert record.state is RunState.TIMED_OUT
    await kit.assert_history(run_id, ["run_created", "step_dispatched", "run_timed_out"])
