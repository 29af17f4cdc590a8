"""The engine's decision core, with no broker and no Redis: every incoming kind against a run
in every state, including duplicates and stale messages (the compare-and-set rule is
``core.check.check``, which tests/contract/test_check.py holds the Lua script to)."""

from __future__ import annotations

from typing import Any

import pytest

from orch_serv.constants import EventKind, Lane, MessageKind, Phase, RunState, TimerKind
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.messages.envelope import Envelope, ErrorInfo, StatusInfo
from orch_serv.orchestrator.core import (
    Advance,
    Clocks,
    Commit,
    Hooked,
    Ignore,
    NeedRun,
    Planner,
    RecordBeat,
    RecordStatus,
    Reject,
    ReplyHooks,
    Send,
    recover,
)
from orch_serv.orchestrator.core.check import Stored, check
from orch_serv.store.base import Outcome, RunRecord
from orch_serv.store.shape import RunFields
from orch_serv.store.timers import TimerId

NOW = 1_000.0
RUN = "r1"
SPEC = FlowSpec(
    name="f",
    steps=(
        StepSpec(index=0, name="a", block="a", service="s", command="a", compensate="undo_a"),
        StepSpec(
            index=1,
            name="b",
            block="b",
            service="s",
            command="b",
            retry=RetryPolicy(max_attempts=3, initial_delay=2.0),
            timeouts=Timeouts(dispatch=5.0, execution=30.0, heartbeat=10.0, total=60.0),
        ),
        StepSpec(index=2, name="c", block="c", service="t", command="c"),
    ),
).with_version()
PLANNER = Planner(Timeouts(), "ns.orchestrator")
ADVANCE = Advance(PLANNER)
CLOCKS = Clocks(PLANNER)


def envelope(kind: MessageKind, **fields: Any) -> Envelope[Any]:
    base: dict[str, Any] = {
        "message_id": f"{RUN}:{kind.value}",
        "run_id": RUN,
        "flow": "f",
        "flow_version": SPEC.version,
    }
    return Envelope[Any](kind=kind, **(base | fields))


def reply(step: int, attempt: int = 1, *, lane: Lane = Lane.RUN, **fields: Any) -> Envelope[Any]:
    suffix = "" if lane is Lane.RUN else ":c"
    return envelope(
        MessageKind.REPLY,
        message_id=f"{RUN}:{step}:{attempt}{suffix}:reply",
        step=step,
        step_name=SPEC.steps[step].name,
        attempt=attempt,
        lane=lane,
        service="s",
        **({"body": {"n": step}} | fields),
    )


def record(state: RunState, step: int = 1, attempt: int = 1, **fields: Any) -> RunRecord:
    phase = None if state.terminal else fields.pop("phase", Phase.STARTED)
    return RunRecord(
        run_id=RUN,
        kind="flow",
        flow="f",
        version=SPEC.version,
        state=state,
        step=step,
        step_name=SPEC.steps[step].name,
        attempt=attempt,
        steps_total=3,
        created_at=NOW - 10,
        updated_at=NOW - 1,
        phase=phase,
        **fields,
    )


def fields_of(decision: Commit) -> RunFields:
    assert isinstance(decision.change.fields, RunFields)
    return decision.change.fields


def error_of(decision: Commit) -> ErrorInfo:
    error = fields_of(decision).error
    assert isinstance(error, ErrorInfo)
    return error


# -- every state x every incoming kind ----------------------------------------------------------
STATES = list(RunState)


def _incoming() -> dict[str, tuple[Commit, Stored]]:
    """Each kind of incoming thing, its decision, and the stored position it applies to."""
    start = ADVANCE.on_start(
        SPEC, envelope(MessageKind.START, body={"x": 1}), NOW, redelivered=False
    )
    ok = ADVANCE.on_reply(SPEC, reply(0), NOW, redelivered=False)
    err = ADVANCE.on_reply(
        SPEC, reply(1, error=ErrorInfo(type="Boom", message="x")), NOW, redelivered=False
    )
    comp = ADVANCE.on_reply(SPEC, reply(0, lane=Lane.COMPENSATE), NOW, redelivered=False)
    running = record(RunState.RUNNING, step=1, attempt=1, phase=Phase.DISPATCHED)
    dispatch = CLOCKS.on_timer(SPEC, TimerId(RUN, TimerKind.DISPATCH, Lane.RUN, 1, 1), running, NOW)
    backoff = record(RunState.RUNNING, step=1, attempt=2, phase=Phase.BACKOFF)
    retry = CLOCKS.on_timer(SPEC, TimerId(RUN, TimerKind.RETRY, Lane.RUN, 1, 2), backoff, NOW)
    deadline = CLOCKS.on_deadline(TimerId(RUN, TimerKind.DEADLINE, Lane.RUN, 0, 0), NOW)
    queued = record(RunState.RUNNING, step=1, attempt=2, phase=Phase.QUEUED, step_input={"n": 1})
    resume = ADVANCE.on_resume(
        SPEC,
        queued,
        envelope(MessageKind.RESUME, message_id=f"{RUN}:resume:run:1:2", step=1, attempt=2),
        NOW,
        redelivered=False,
    )
    decisions = {
        "start": (start, Stored(RunState.PENDING, 0, 0, Phase.QUEUED)),
        "reply": (ok, Stored(RunState.RUNNING, 0, 1, Phase.STARTED)),
        "error_reply": (err, Stored(RunState.RUNNING, 1, 1, Phase.STARTED)),
        "compensation_reply": (comp, Stored(RunState.COMPENSATING, 0, 1, Phase.STARTED)),
        "dispatch_timer": (dispatch, Stored(RunState.RUNNING, 1, 1, Phase.DISPATCHED)),
        "retry_timer": (retry, Stored(RunState.RUNNING, 1, 2, Phase.BACKOFF)),
        "deadline": (deadline, Stored(RunState.RUNNING, 1, 1, Phase.STARTED)),
        "resume": (resume, Stored(RunState.RUNNING, 1, 2, Phase.QUEUED)),
    }
    out: dict[str, tuple[Commit, Stored]] = {}
    for name, (decision, stored) in decisions.items():
        assert isinstance(decision, Commit), (name, decision)
        out[name] = (decision, stored)
    return out


INCOMING = _incoming()


@pytest.mark.parametrize("state", STATES, ids=[s.value for s in STATES])
@pytest.mark.parametrize("kind", sorted(INCOMING))
def test_every_incoming_kind_applies_only_where_the_run_is(kind: str, state: RunState) -> None:
    decision, home = INCOMING[kind]
    stored = Stored(state, home.step, home.attempt, None if state.terminal else home.phase)
    outcome, reason = check(stored, decision.change)
    active_ok = kind == "deadline" and not state.terminal
    if state is home.state or active_ok:
        assert outcome is Outcome.APPLIED
    elif state.terminal:
        assert (outcome, reason) == (Outcome.STALE, "run_finished")
    else:
        assert outcome is Outcome.STALE and reason in ("stale_phase", "stale_attempt")


@pytest.mark.parametrize("kind", sorted(INCOMING))
def test_a_duplicate_of_every_kind_is_already_applied(kind: str) -> None:
    decision, home = INCOMING[kind]
    after = Stored(
        decision.change.new.state,
        decision.change.new.step if decision.change.new.step is not None else home.step,
        decision.change.new.attempt if decision.change.new.attempt is not None else home.attempt,
        decision.change.new.phase,
        cause=None if decision.change.new.state.terminal else decision.change.cause,
    )
    outcome, reason = check(after, decision.change)
    if decision.change.new.state.terminal:  # a finished run keeps no cause: a late duplicate
        assert (outcome, reason) == (Outcome.STALE, "run_finished")
    else:
        assert (outcome, reason) == (Outcome.ALREADY_APPLIED, "duplicate")


def test_a_reply_of_an_older_attempt_is_stale_and_recorded_as_ignored() -> None:
    decision = ADVANCE.on_reply(SPEC, reply(1, attempt=1), NOW, redelivered=False)
    assert isinstance(decision, Commit)
    stored = Stored(RunState.RUNNING, 1, 2, Phase.STARTED, cause="r1:1:2")
    assert check(stored, decision.change) == (Outcome.STALE, "stale_attempt")
    ignored = decision.change.ignored
    assert ignored is not None and ignored.kind is EventKind.REPLY_IGNORED
    assert check(None, decision.change) == (Outcome.NOT_FOUND, None)


# -- starts ---------------------------------------------------------------------------------------
def test_start_dispatches_the_first_step() -> None:
    message = envelope(MessageKind.START, body={"x": 1})
    decision = ADVANCE.on_start(SPEC, message, NOW, redelivered=True)
    assert isinstance(decision, Commit) and decision.republish
    change, command = decision.change, decision.command
    assert (change.new.state, change.new.step, change.new.attempt) == (RunState.RUNNING, 0, 1)
    assert change.new.phase is Phase.DISPATCHED
    assert change.fields == RunFields(step_input={"x": 1})
    assert [e.kind for e in change.events] == [EventKind.RUN_STARTED, EventKind.STEP_DISPATCHED]
    assert command is not None and command.message_id == "r1:0:1" and command.command == "a"
    assert command.reply_to == "ns.orchestrator" and command.body == {"x": 1}


def test_a_failing_pre_hook_fails_the_start_and_a_none_ends_it() -> None:
    message = envelope(MessageKind.START, body={"x": 1})
    failed = ADVANCE.on_start(
        SPEC, message, NOW, redelivered=False, pre=Hooked(None, ValueError("bad"))
    )
    assert isinstance(failed, Commit) and failed.command is None
    assert failed.change.new.state is RunState.FAILED
    assert fields_of(failed).hook_pending is True
    assert error_of(failed).type == "HookError"
    stopped = ADVANCE.on_start(SPEC, message, NOW, redelivered=False, pre=Hooked(None))
    assert isinstance(stopped, Commit) and stopped.change.new.state is RunState.SUCCEEDED
    assert fields_of(stopped).result == {"x": 1}
    assert EventKind.RUN_STOPPED in [e.kind for e in stopped.change.events]


# -- replies --------------------------------------------------------------------------------------
def test_a_reply_dispatches_the_next_step_and_keeps_a_compensable_output() -> None:
    decision = ADVANCE.on_reply(SPEC, reply(0), NOW, redelivered=False)
    assert isinstance(decision, Commit) and decision.command is not None
    assert decision.command.message_id == "r1:1:1" and decision.command.source == "a"
    assert decision.change.fields == RunFields(step_input={"n": 0}, outputs={0: {"n": 0}})
    assert decision.change.clear_timers
    members = [m for m, _ in decision.change.timers_add]
    assert members == [
        str(TimerId(RUN, TimerKind.DISPATCH, Lane.RUN, 1, 1)),
        str(TimerId(RUN, TimerKind.TOTAL, Lane.RUN, 1, 0)),
    ]


def test_the_last_reply_ends_the_run_succeeded_with_the_result() -> None:
    decision = ADVANCE.on_reply(SPEC, reply(2, body={"done": True}), NOW, redelivered=False)
    assert isinstance(decision, Commit) and decision.command is None
    assert decision.change.new.state is RunState.SUCCEEDED
    assert fields_of(decision).result == {"done": True}


def test_a_retryable_error_schedules_a_retry() -> None:
    error = ErrorInfo(type="Boom", message="x")
    decision = ADVANCE.on_reply(SPEC, reply(1, error=error), NOW, redelivered=False)
    assert isinstance(decision, Commit)
    new = decision.change.new
    assert (new.state, new.step, new.attempt, new.phase) == (
        RunState.RUNNING,
        1,
        2,
        Phase.BACKOFF,
    )
    assert decision.change.timers_add == [
        (str(TimerId(RUN, TimerKind.RETRY, Lane.RUN, 1, 2)), NOW + 2.0)
    ]


def test_a_final_error_compensates_with_the_stored_output() -> None:
    error = ErrorInfo(type="Boom", message="x", retryable=False)
    first = ADVANCE.on_reply(SPEC, reply(1, error=error), NOW, redelivered=False)
    assert isinstance(first, NeedRun)
    decision = ADVANCE.on_reply(
        SPEC, reply(1, error=error), NOW, redelivered=False, outputs={0: {"kept": 1}}
    )
    assert isinstance(decision, Commit) and decision.command is not None
    assert decision.change.new.state is RunState.COMPENSATING
    assert decision.command.command == "undo_a" and decision.command.body == {"kept": 1}
    assert fields_of(decision).outcome is RunState.FAILED


def test_compensation_replies_end_compensated_or_compensation_failed() -> None:
    done = ADVANCE.on_reply(SPEC, reply(0, lane=Lane.COMPENSATE), NOW, redelivered=False)
    assert isinstance(done, Commit) and done.change.new.state is RunState.COMPENSATED
    error = ErrorInfo(type="Boom", message="x", retryable=False)
    failed = ADVANCE.on_reply(
        SPEC, reply(0, lane=Lane.COMPENSATE, error=error), NOW, redelivered=False
    )
    assert isinstance(failed, Commit)
    assert failed.change.new.state is RunState.COMPENSATION_FAILED


def test_hook_failures_around_a_reply() -> None:
    boom = Hooked(None, RuntimeError("post"))
    post_failed = ADVANCE.on_reply(
        SPEC, reply(1), NOW, redelivered=False, hooks=ReplyHooks(boom), outputs={}
    )
    assert isinstance(post_failed, Commit) and post_failed.change.new.state is RunState.COMPENSATING
    planned = ADVANCE.next_dispatch(SPEC, reply(1), reply(1), NOW)
    assert planned is not None
    pre_failed = ADVANCE.on_reply(
        SPEC,
        reply(1),
        NOW,
        redelivered=False,
        hooks=ReplyHooks(Hooked(None), planned, Hooked(None, RuntimeError("pre"))),
        outputs={},
    )
    assert isinstance(pre_failed, Commit)
    assert fields_of(pre_failed).hook_pending is True
    assert "step 'c'" in error_of(pre_failed).message
    stopped = ADVANCE.on_reply(
        SPEC,
        reply(1),
        NOW,
        redelivered=False,
        hooks=ReplyHooks(Hooked(None), planned, Hooked(None)),
    )
    assert isinstance(stopped, Commit) and stopped.change.new.state is RunState.SUCCEEDED


def test_a_reply_past_the_end_is_rejected() -> None:
    past = reply(0).model_copy(update={"step": 7})
    assert isinstance(ADVANCE.on_reply(SPEC, past, NOW, redelivered=False), Reject)


# -- heartbeats, status events, timers ------------------------------------------------------------
def test_a_heartbeat_arms_the_execution_and_heartbeat_clocks() -> None:
    beat = envelope(MessageKind.HEARTBEAT, step=1, attempt=1, service="s")
    decision = CLOCKS.on_heartbeat(SPEC, beat, NOW)
    assert isinstance(decision, RecordBeat)
    assert decision.dues == (NOW + 30.0, NOW + 10.0)
    assert decision.beat.dispatch_timer == str(TimerId(RUN, TimerKind.DISPATCH, Lane.RUN, 1, 1))
    assert isinstance(
        CLOCKS.on_heartbeat(SPEC, envelope(MessageKind.HEARTBEAT, step=9), NOW), Reject
    )


def test_status_events_are_recorded_and_a_status_without_one_is_rejected() -> None:
    info = StatusInfo(name="validated")
    decision = CLOCKS.on_status(envelope(MessageKind.STATUS, status=info, step=0))
    assert isinstance(decision, RecordStatus) and decision.status == "validated"
    assert isinstance(CLOCKS.on_status(envelope(MessageKind.STATUS)), Reject)


def test_a_dispatch_timeout_names_its_cause_and_stops_the_attempt() -> None:
    running = record(RunState.RUNNING, step=1, attempt=1, phase=Phase.DISPATCHED)
    timer = TimerId(RUN, TimerKind.DISPATCH, Lane.RUN, 1, 1)
    decision = CLOCKS.on_timer(SPEC, timer, running, NOW, why="no consumer on queue 'q'")
    assert isinstance(decision, Commit) and decision.cancel is not None
    assert decision.cancel.message_id == "r1:1:1"
    failed = decision.change.events[0]
    assert failed.error is not None and failed.error.type == "DispatchTimeout"
    assert failed.error.message.endswith("within 5 s: no consumer on queue 'q'")


def test_a_total_timeout_gives_up_across_attempts() -> None:
    running = record(RunState.RUNNING, step=1, attempt=2, phase=Phase.STARTED)
    timer = TimerId(RUN, TimerKind.TOTAL, Lane.RUN, 1, 0)
    decision = CLOCKS.on_timer(SPEC, timer, running, NOW)
    assert isinstance(decision, Commit)
    assert decision.change.expect.attempt is None and decision.change.expect.phase is None
    assert decision.change.new.state is RunState.COMPENSATING  # step 0 has a compensation


def test_timers_of_a_finished_run_are_ignored() -> None:
    done = record(RunState.SUCCEEDED)
    timer = TimerId(RUN, TimerKind.EXECUTION, Lane.RUN, 1, 1)
    assert isinstance(CLOCKS.on_timer(SPEC, timer, done, NOW), Ignore)


# -- resume and recovery --------------------------------------------------------------------------
def test_a_resume_runs_a_pending_pre_hook() -> None:
    queued = record(
        RunState.RUNNING,
        step=1,
        attempt=2,
        phase=Phase.QUEUED,
        step_input={"n": 1},
        hook_pending=True,
    )
    message = envelope(MessageKind.RESUME, message_id="r1:resume:run:1:2", step=1, attempt=2)
    assert Advance.resume_runs_pre_hook(queued, message)
    planned = ADVANCE.resume_dispatch(SPEC, queued, message, NOW)
    assert not isinstance(planned, Reject) and planned.command.body == {"n": 1}
    changed = planned.command.model_copy(update={"body": {"n": 2}})
    decision = ADVANCE.on_resume(
        SPEC, queued, message, NOW, redelivered=False, planned=planned, pre=Hooked(changed)
    )
    assert isinstance(decision, Commit) and decision.command is not None
    assert decision.change.fields == RunFields(hook_pending=None, step_input={"n": 2})
    past = message.model_copy(update={"step": 5})
    assert isinstance(ADVANCE.on_resume(SPEC, queued, past, NOW, redelivered=False), Reject)


@pytest.mark.parametrize(
    ("state", "kind", "lane"),
    [
        (RunState.PENDING, MessageKind.START, None),
        (RunState.RUNNING, MessageKind.RESUME, Lane.RUN),
        (RunState.COMPENSATING, MessageKind.RESUME, Lane.COMPENSATE),
    ],
)
def test_recovery_resends_the_lost_message(
    state: RunState, kind: MessageKind, lane: Lane | None
) -> None:
    stranded = record(state, step=0, attempt=1, phase=Phase.QUEUED, input={"x": 1})
    decision = recover(stranded, NOW, missing=None, sent=1, max_attempts=3)
    assert isinstance(decision, Send) and decision.message.kind is kind
    if lane is not None:
        assert decision.message.lane is lane


def test_recovery_gives_up_on_a_missing_flow_or_after_the_attempts() -> None:
    stranded = record(RunState.PENDING, step=0, attempt=0, phase=Phase.QUEUED)
    gone = recover(stranded, NOW, missing="unknown flow", sent=1, max_attempts=3)
    assert isinstance(gone, Commit) and error_of(gone).type == "FlowNotFound"
    tired = recover(stranded, NOW, missing=None, sent=4, max_attempts=3)
    assert isinstance(tired, Commit) and tired.change.new.state is RunState.FAILED
    assert error_of(tired).type == "StartUndeliverable"
    assert "sent 3 times" in error_of(tired).message
