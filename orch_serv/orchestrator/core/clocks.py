"""Heartbeats, status events and timers: the decisions the clocks of a run lead to. Pure."""

from __future__ import annotations

import dataclasses
from typing import Any

from orch_serv.constants import EventKind, Lane, Phase, RunState, TimerKind
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages import ids
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core.decision import (
    CancelNotice,
    Commit,
    Decision,
    Ignore,
    RecordBeat,
    RecordStatus,
    Reject,
)
from orch_serv.orchestrator.core.dispatch import lane_state
from orch_serv.orchestrator.core.events import run_event, step_event, timeout_error
from orch_serv.orchestrator.core.outcomes import Decider
from orch_serv.store.base import Beat, Event, Position, RunRecord, Transition
from orch_serv.store.shape import RunFields
from orch_serv.store.timers import TimerId


class Clocks(Decider):
    """Decisions for HEARTBEAT and STATUS messages and for due timers."""

    def on_heartbeat(self, spec: FlowSpec, message: Envelope[Any], now: float) -> Decision:
        """The start notice or a heartbeat: (re)arm the execution and heartbeat clocks."""
        step = spec.step(message.step)
        if step is None:
            return Reject(f"step {message.step} is past the end of {spec.name!r}")
        lane, run_id, attempt = message.lane, message.run_id, message.attempt
        limits = self.planner.timeouts(step)
        member = self.planner.timer
        execution = heartbeat = None
        if limits.execution:
            execution = (
                member(run_id, TimerKind.EXECUTION, lane, step, attempt),
                now + limits.execution,
            )
        if limits.heartbeat:
            heartbeat = (
                member(run_id, TimerKind.HEARTBEAT, lane, step, attempt),
                now + limits.heartbeat,
            )
        progress = None
        if message.progress is not None:
            progress = step_event(
                EventKind.HEARTBEAT,
                step,
                attempt,
                now,
                component=message.service,
                body=message.progress,
            )
        beat = Beat(
            run_id=run_id,
            state=lane_state(lane),
            step=step.index,
            attempt=attempt,
            now=now,
            started=step_event(
                EventKind.STEP_STARTED,
                step,
                attempt,
                now,
                component=message.service,
                message_id=message.message_id,
            ),
            progress=progress,
            dispatch_timer=member(run_id, TimerKind.DISPATCH, lane, step, attempt),
            execution_timer=execution,
            heartbeat_timer=heartbeat,
        )
        dues = tuple(t[1] for t in (execution, heartbeat) if t is not None)
        return RecordBeat(beat, dues)

    @staticmethod
    def on_status(message: Envelope[Any]) -> Decision:
        """A status event (Statusek's setStatus, the Oslo lineage body) for the history."""
        info = message.status
        if info is None:
            return Reject("status message without a `status` field")
        event = Event(
            kind=EventKind.STATUS,
            time=message.created_at,
            step=message.step,
            step_name=message.step_name,
            attempt=message.attempt,
            status=info.status,
            component=message.service,
            body=info.lineage,
            message_id=message.message_id,
            name=info.name,
            message=info.message,
        )
        return RecordStatus(message.run_id, event, info.name)

    @staticmethod
    def on_deadline(timer: TimerId, now: float) -> Decision:
        """The run's deadline: TIMED_OUT from whatever active state, and its work stopped."""
        error = timeout_error(TimerKind.DEADLINE, None)
        change = Transition.any_active(
            run_id=timer.run_id,
            new=Position(RunState.TIMED_OUT, None, None),
            cause=str(timer),
            now=now,
            fields=RunFields(error=error),
            events=[run_event(EventKind.RUN_TIMED_OUT, now, error=error)],
        )
        return Commit(change, cancel=CancelNotice(timer.run_id))

    def on_timer(
        self,
        spec: FlowSpec,
        timer: TimerId,
        record: RunRecord,
        now: float,
        *,
        why: str | None = None,
    ) -> Decision:
        """A step timer of ``record`` fell due: dispatch a retry, or fail the attempt whose
        clock ran out (``why``: what the shell found out about a dispatch timeout's cause)."""
        if record.state.terminal:
            return Ignore(f"run is {record.state.value}")
        step = spec.step(timer.step)
        if step is None:
            return Ignore(f"step {timer.step} is past the end of {spec.name!r}")
        lane, state = timer.lane, lane_state(timer.lane)
        if timer.kind is TimerKind.RETRY:
            body = record.step_input if lane is Lane.RUN else record.outputs.get(step.index)
            plan = self.planner.dispatch(
                spec,
                step,
                lane=lane,
                run_id=timer.run_id,
                attempt=timer.attempt,
                body=body,
                now=now,
            )
            change = Transition(
                run_id=timer.run_id,
                expect=Position(state, step.index, timer.attempt, Phase.BACKOFF),
                new=Position(state, step.index, timer.attempt, Phase.DISPATCHED),
                cause=str(timer),
                now=now,
                events=[plan.event],
                timers_add=plan.timers,
            )
            return Commit(change, plan.command, republish=True)
        limits = self.planner.timeouts(step)
        seconds = {
            TimerKind.DISPATCH: limits.dispatch,
            TimerKind.HEARTBEAT: limits.heartbeat,
            TimerKind.EXECUTION: limits.execution,
            TimerKind.TOTAL: limits.total,
        }[timer.kind]
        error = timeout_error(
            timer.kind, seconds, why if timer.kind is TimerKind.DISPATCH else None
        )
        total = timer.kind is TimerKind.TOTAL
        phase = Phase.DISPATCHED if timer.kind is TimerKind.DISPATCH else Phase.STARTED
        attempt = record.attempt if total else timer.attempt
        expect = Position(state, step.index, None if total else attempt, None if total else phase)
        failed = step_event(
            EventKind.STEP_TIMED_OUT, step, attempt, now, error=error, component="orchestrator"
        )
        decision = self.outcomes.attempt_failed(
            spec,
            timer.run_id,
            lane,
            step,
            attempt,
            error,
            now,
            cause=str(timer),
            expect=expect,
            failed=failed,
            outputs=record.outputs,
            final=total,
        )
        if not isinstance(decision, Commit):  # the outputs were given: never happens
            return decision
        if (record.attempt, record.step, record.state) == (attempt, step.index, state):
            target = ids.command_id(timer.run_id, step.index, attempt, lane)
            decision = dataclasses.replace(decision, cancel=CancelNotice(timer.run_id, target))
        return decision


__all__ = ["Clocks"]
