"""The run store contract (embedded fakeredis and real Redis): creation, the Lua transition,
history, indexes, timers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orch_serv.constants import EventKind, EventStatus, Phase, RunState
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import CreateResult, Event, NewRun, Outcome, Position, Transition
from orch_serv.store.redis import RedisRunStore

SPEC = FlowSpec(
    name="f",
    steps=(
        StepSpec(index=0, name="a", block="a", service="s", command="a"),
        StepSpec(index=1, name="b", block="b", service="s", command="b"),
    ),
).with_version()


async def _new(
    store: RedisRunStore, run_id: str, key: str | None = None, body: Any = None
) -> CreateResult:
    return await store.create_run(
        NewRun(run_id=run_id, spec=SPEC, input=body or {"x": 1}, now=100.0, key=key)
    )


def _advance(run_id: str, frm: Position, to: Position, cause: str, **kw: Any) -> Transition:
    return Transition(
        run_id=run_id,
        expect=frm,
        new=to,
        cause=cause,
        now=101.0,
        events=[Event(kind=EventKind.STEP_COMPLETED, time=101.0, step=frm.step)],
        ignored=Event(kind=EventKind.REPLY_IGNORED, time=101.0, step=frm.step, message_id=cause),
        **kw,
    )


START = Position(RunState.PENDING, 0, 0)
STEP0 = Position(RunState.RUNNING, 0, 1, Phase.DISPATCHED)
STEP1 = Position(RunState.RUNNING, 1, 1, Phase.DISPATCHED)


async def test_create_is_idempotent_by_key(store: RedisRunStore) -> None:
    r1, r2 = store.new_run_id("order-7"), store.new_run_id("order-7")
    first = await _new(store, r1, key="order-7")
    second = await _new(store, r2, key="order-7", body={"x": 2})
    assert first.created and not second.created
    assert second.run_id == r1
    assert await store.find_by_key("order-7") == r1
    assert await store.find_by_key("nope") is None
    assert await store.get_run(r2) is None
    record = await store.get_run(r1)
    assert record is not None
    assert record.input == {"x": 1} and record.state is RunState.PENDING and record.key == "order-7"
    assert record.steps_total == 2 and record.version == SPEC.version


async def test_transition_applies_once_and_records_stale(store: RedisRunStore) -> None:
    await _new(store, "r1")
    started = await store.transition(_advance("r1", START, STEP0, "r1:start"))
    assert started.outcome is Outcome.APPLIED
    moved = await store.transition(_advance("r1", STEP0, STEP1, "reply-0"))
    assert moved.outcome is Outcome.APPLIED
    duplicate = await store.transition(_advance("r1", STEP0, STEP1, "reply-0"))
    assert duplicate.outcome is Outcome.ALREADY_APPLIED and duplicate.reason == "duplicate"
    other = await store.transition(_advance("r1", STEP0, STEP1, "reply-0-bis"))
    assert other.outcome is Outcome.STALE and other.reason == "stale_step"
    old_attempt = await store.transition(
        _advance("r1", Position(RunState.RUNNING, 1, 2, Phase.DISPATCHED), STEP1, "reply-1-2")
    )
    assert old_attempt.outcome is Outcome.STALE and old_attempt.reason == "stale_attempt"
    assert old_attempt.current == STEP1

    record = await store.get_run("r1")
    assert record is not None and (record.state, record.step, record.attempt) == (
        RunState.RUNNING,
        1,
        1,
    )
    events = await store.get_events("r1")
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.STEP_COMPLETED) == 2  # one per applied transition
    ignored = [e for e in events if e.kind in (EventKind.REPLY_IGNORED, EventKind.LATE_RESULT)]
    assert [(e.kind, e.reason) for e in ignored] == [
        (EventKind.REPLY_IGNORED, "duplicate"),
        (EventKind.LATE_RESULT, "stale_step"),
        (EventKind.LATE_RESULT, "stale_attempt"),
    ]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_finishing_sets_retention_and_indexes(store: RedisRunStore) -> None:
    await _new(store, "r1")
    await store.transition(_advance("r1", START, STEP0, "s"))
    assert [r.run_id for r in await store.list_runs(state=RunState.RUNNING)] == ["r1"]
    done = Position(RunState.SUCCEEDED, 0, 1)
    result = await store.transition(_advance("r1", STEP0, done, "c", fields={"result": {"ok": 1}}))
    assert result.outcome is Outcome.APPLIED
    late = await store.transition(_advance("r1", STEP0, STEP1, "late"))
    assert late.outcome is Outcome.STALE and late.reason == "run_finished"
    record = await store.get_run("r1")
    assert record is not None and record.done and record.result == {"ok": 1}
    assert record.finished_at == 101.0
    assert await store.list_runs(state=RunState.RUNNING) == []
    assert [r.run_id for r in await store.list_runs(state=RunState.SUCCEEDED)] == ["r1"]
    assert [r.run_id for r in await store.list_runs(flow="f")] == ["r1"]
    for key in (store.keys.run("r1"), store.keys.events("r1")):
        ttl = await store.redis.ttl(key)
        assert 0 < ttl <= 60


async def test_record_event_and_statuses(store: RedisRunStore) -> None:
    await _new(store, "r1")
    lineage = {"files_incoming": ["a.csv"], "files_outgoing": ["b.jsonl"]}
    event = Event(kind=EventKind.STATUS, time=5.0, name="validated", body=lineage, step=0)
    assert await store.record_event("r1", event, "validated") is RunState.PENDING
    assert await store.record_event("missing", event, "validated") is None
    record = await store.get_run("r1")
    assert record is not None and record.statuses == frozenset({"validated"})
    status = [e for e in await store.get_events("r1") if e.kind is EventKind.STATUS]
    assert status[0].body == lineage and status[0].status is EventStatus.OK


async def test_failure_error_round_trips(store: RedisRunStore) -> None:
    await _new(store, "r1")
    await store.transition(_advance("r1", START, STEP0, "s"))
    error = ErrorInfo(type="Boom", message="it broke", retryable=False)
    failed = Position(RunState.FAILED, 0, 1)
    change = _advance("r1", STEP0, failed, "c", fields={"error": error.model_dump()})
    assert (await store.transition(change)).outcome is Outcome.APPLIED
    record = await store.get_run("r1")
    assert record is not None and record.error == error and record.state is RunState.FAILED


async def test_unknown_run_transition(store: RedisRunStore) -> None:
    result = await store.transition(_advance("ghost", START, STEP0, "s"))
    assert result.outcome is Outcome.NOT_FOUND


async def test_wait_finished_wakes_on_the_announcement(store: RedisRunStore) -> None:
    await _new(store, "r1")
    await store.transition(_advance("r1", START, STEP0, "s"))
    waiter = asyncio.create_task(store.wait_finished("r1", timeout=30))
    await store.transition(_advance("r1", STEP0, Position(RunState.SUCCEEDED, 0, 1), "c"))
    record = await waiter
    assert record.state is RunState.SUCCEEDED


async def test_specs_keep_every_version(store: RedisRunStore) -> None:
    v2 = FlowSpec(name="f", steps=SPEC.steps[:1]).with_version()
    await store.register_specs([SPEC], default_flow="f", default_block=None)
    await store.register_specs([v2], default_flow=None, default_block=None)
    assert (await store.get_spec("flow", "f")) == v2
    assert (await store.get_spec("flow", "f", SPEC.version)) == SPEC
    assert await store.defaults() == ("f", None)
    assert [s.name for s in await store.list_specs()] == ["f"]


async def test_housekeeping_drops_index_entries_of_expired_runs(store: RedisRunStore) -> None:
    await _new(store, "r1")
    await _new(store, "r2")
    await store.redis.delete(store.keys.run("r1"))  # as if its retention had expired
    removed = await store.housekeeping(now=100.0 + 3600)
    assert removed >= 1
    assert [r.run_id for r in await store.list_runs()] == ["r2"]


async def test_connect_fails_fast_with_a_clear_error() -> None:
    from orch_serv.exceptions import StoreError

    with pytest.raises(StoreError, match="cannot connect to Redis"):
        await RedisRunStore.connect("redis://127.0.0.1:1/0", timeout=2)
