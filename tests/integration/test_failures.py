"""Failure semantics on the real backends: each clock fires for its own case, retries,
late results, cancellation that reaches the handler, and compensation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orch_serv.constants import EventKind, RunState, TimerKind
from orch_serv.exceptions import InvalidRunState
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.store.base import NewRun
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.timers import TimerId
from orch_serv.transport.rabbit import RabbitTransport
from tests.apps.clocks import Probe, orchestrator
from tests.conftest import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(
    any_backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    Probe.reset()
    transport, store = any_backends
    fast = settings.model_copy(update={"timer_poll_seconds": 0.2, "shutdown_grace_seconds": 1})
    async with orchestrator.attach(transport, store, fast, with_services=True) as running:
        yield running


def kinds(events: list[Any]) -> list[EventKind]:
    return [e.kind for e in events]


async def finish(running: Running, flow: str, body: Any = None) -> tuple[Any, list[Any]]:
    run_id = await running.start(flow, body if body is not None else {})
    record = await running.wait(run_id, timeout=30)
    return record, await running.events(run_id)


# -- each clock fires for its own case, and not for the others ---------------------------------
async def test_execution_clock_fires_for_a_slow_handler(running: Running) -> None:
    record, events = await finish(running, "slow")
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "ExecutionTimeout"
    assert EventKind.STEP_STARTED in kinds(events)  # picked up: the dispatch clock stopped
    (timed_out,) = [e for e in events if e.kind is EventKind.STEP_TIMED_OUT]
    assert timed_out.error is not None and timed_out.error.type == "ExecutionTimeout"
    assert Probe.stopped is not None
    await asyncio.wait_for(Probe.stopped.wait(), 10)  # the handler was told to stop


async def test_dispatch_clock_fires_when_no_service_consumes(running: Running) -> None:
    record, events = await finish(running, "no_consumer")
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "DispatchTimeout"
    assert EventKind.STEP_STARTED not in kinds(events)
    types = [e.error.type for e in events if e.kind is EventKind.STEP_TIMED_OUT and e.error]
    assert types == ["DispatchTimeout"]


async def test_heartbeat_clock_fires_when_a_handler_goes_silent(running: Running) -> None:
    record, events = await finish(running, "silent")
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "HeartbeatTimeout"
    beats = [e for e in events if e.kind is EventKind.HEARTBEAT]
    assert [b.body for b in beats] == [{"done": 1, "of": 10}]  # progress in the history
    types = [e.error.type for e in events if e.kind is EventKind.STEP_TIMED_OUT and e.error]
    assert types == ["HeartbeatTimeout"]


async def test_run_deadline_ends_the_run_timed_out(running: Running) -> None:
    record, events = await finish(running, "deadline")
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "RunDeadlineExceeded"
    assert kinds(events)[-1] is EventKind.RUN_TIMED_OUT
    assert EventKind.STEP_TIMED_OUT not in kinds(events)  # no step clock was involved


async def test_an_expired_run_reads_as_finished_before_its_timer_fires(
    backends: tuple[RabbitTransport, RedisRunStore],
) -> None:
    _, store = backends  # no orchestrator: no timer will ever fire here
    spec = FlowSpec(
        name="f", steps=(StepSpec(index=0, name="a", block="a", service="s", command="a"),)
    ).with_version()
    now = time.time()
    await store.create_run(NewRun(run_id="r", spec=spec, input={}, now=now - 10, deadline=now - 1))
    record = await store.get_run("r")
    assert record is not None and record.done and record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "RunDeadlineExceeded"


async def test_total_clock_stops_retries(running: Running) -> None:
    record, events = await finish(running, "total")
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "StepTotalTimeout"
    assert kinds(events).count(EventKind.RETRY_SCHEDULED) == 1  # the retry never happened
    assert Probe.calls["flaky"] == 1


# -- retries -----------------------------------------------------------------------------------
async def test_a_flaky_handler_succeeds_on_its_third_attempt(running: Running) -> None:
    record, events = await finish(running, "flaky")
    assert record.state is RunState.SUCCEEDED and record.result == {"ok": 3}
    assert record.attempt == 3
    failed = [e for e in events if e.kind is EventKind.STEP_FAILED]
    assert [(e.attempt, e.error.type if e.error else None) for e in failed] == [
        (1, "Transient"),
        (2, "Transient"),
    ]
    assert all(e.duration_ms is not None for e in failed)
    retries = [e for e in events if e.kind is EventKind.RETRY_SCHEDULED]
    assert [r.attempt for r in retries] == [2, 3]
    assert [r.body["delay"] for r in retries] == [0.01, 0.02]  # exponential back-off
    dispatched = [e.attempt for e in events if e.kind is EventKind.STEP_DISPATCHED]
    assert dispatched == [1, 2, 3]
    (completed,) = [e for e in events if e.kind is EventKind.STEP_COMPLETED]
    assert completed.attempt == 3


async def test_a_non_retryable_error_fails_at_once(running: Running) -> None:
    record, events = await finish(running, "refuse")
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "BadRequest"
    assert Probe.calls["refuse"] == 1
    assert EventKind.RETRY_SCHEDULED not in kinds(events)


async def test_a_handler_can_ask_for_a_retry_after_a_delay(running: Running) -> None:
    record, events = await finish(running, "later")  # the policy's own delay is 60 s
    assert record.state is RunState.SUCCEEDED
    (retry,) = [e for e in events if e.kind is EventKind.RETRY_SCHEDULED]
    assert retry.body["delay"] == 0.05


# -- cancellation ------------------------------------------------------------------------------
async def test_cancel_stops_a_running_async_handler(running: Running) -> None:
    run_id = await running.start("cancellable", {})
    await eventually(lambda: _in_handler(running, run_id))
    record = await running.cancel(run_id, reason="operator said so")
    assert record.state is RunState.CANCELLED and record.done  # at once
    assert Probe.stopped is not None
    await asyncio.wait_for(Probe.stopped.wait(), 5)  # the handler's task was cancelled

    async def late() -> list[Any]:
        events = await running.events(run_id)
        return [e for e in events if e.kind is EventKind.LATE_RESULT]

    (late_result,) = await eventually(late)
    assert late_result.error is not None and late_result.error.type == "Cancelled"
    assert late_result.reason == "run_finished"
    assert (await running.get(run_id)).state is RunState.CANCELLED
    with pytest.raises(InvalidRunState):
        await running.cancel(run_id)


async def _in_handler(running: Running, run_id: str, step: int | None = None) -> bool:
    return any(
        ctx.run_id == run_id and step in (None, ctx.step)
        for w in running.workers
        for ctx in w._running.values()
    )


async def test_cancel_sets_the_flag_a_sync_handler_checks(running: Running) -> None:
    run_id = await running.start("cancellable_sync", {})
    await eventually(lambda: _in_handler(running, run_id))
    await running.cancel(run_id)

    async def seen() -> bool:
        return Probe.flag_seen

    assert await eventually(seen)


# -- compensation ------------------------------------------------------------------------------
async def test_a_failure_at_step_3_compensates_steps_2_then_1(running: Running) -> None:
    record, events = await finish(running, "booking", {"item": "seat"})
    assert record.state is RunState.COMPENSATED
    assert record.error is not None and record.error.type == "Declined"
    assert Probe.log == [
        "reserve:seat",
        "reserve:seat",
        "charge",
        "release:r-seat",
        "release:r-seat",
    ]
    compensated = [e.step for e in events if e.kind is EventKind.COMPENSATION_COMPLETED]
    assert compensated == [1, 0]  # reverse order
    assert kinds(events)[-1] is EventKind.RUN_COMPENSATED


async def test_cancel_with_compensation_undoes_completed_steps(running: Running) -> None:
    run_id = await running.start("hold_then_wait", {"item": "room"})
    # in the second step's handler (the first one's, reserve, may be caught running too)
    await eventually(lambda: _in_handler(running, run_id, step=1))
    record = await running.cancel(run_id, compensate=True)
    assert record.state is RunState.COMPENSATING
    final = await running.wait(run_id, timeout=30)
    assert final.state is RunState.COMPENSATED
    assert Probe.log == ["reserve:room", "release:r-room"]


# -- timers under a lease ----------------------------------------------------------------------
async def test_a_claimed_timer_falls_due_again_when_its_replica_dies(
    backends: tuple[RabbitTransport, RedisRunStore],
) -> None:
    _, store = backends
    member = str(TimerId("run-1", TimerKind.DEADLINE))
    await store.redis.zadd(store.keys.timers_of("run-1"), {member: 1_000})
    first = await store.claim_timers(now=2.0, lease=30.0, limit=10)
    assert [m for m, _ in first] == [member]
    assert await store.claim_timers(now=3.0, lease=30.0, limit=10) == []  # held by the lease
    again = await store.claim_timers(now=40.0, lease=30.0, limit=10)  # the holder died
    assert [m for m, _ in again] == [member]
    await store.release_timer(member, again[0][1])
    assert await store.claim_timers(now=1_000.0, lease=30.0, limit=10) == []
