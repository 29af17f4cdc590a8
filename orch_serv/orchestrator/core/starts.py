"""Starts and resumes: the decisions that put a run (back) on a step. Pure.

The shell asks for the command a pre hook is to see (:meth:`Starts.start_dispatch`,
:meth:`Starts.resume_dispatch`), runs the hook, and hands over what it made of the message
(:class:`~orch_serv.orchestrator.core.hooks.Hooked`); without a hook, pass none.
"""

from __future__ import annotations

from typing import Any

from orch_serv.constants import EventKind, Lane, Phase, RunState
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core.decision import Commit, Decision, Reject
from orch_serv.orchestrator.core.dispatch import Dispatch, lane_state
from orch_serv.orchestrator.core.events import (
    hook_error,
    run_event,
    stopped_event,
)
from orch_serv.orchestrator.core.hooks import Hooked
from orch_serv.orchestrator.core.outcomes import Decider, finish
from orch_serv.store.base import Position, RunRecord, Transition
from orch_serv.store.shape import RunFields


class Starts(Decider):
    """Decisions for START and RESUME messages."""

    # -- start -------------------------------------------------------------------------------
    def start_dispatch(self, spec: FlowSpec, message: Envelope[Any], now: float) -> Dispatch:
        """The first step's command, as its pre hook is to see it."""
        return self.planner.dispatch(
            spec,
            spec.steps[0],
            lane=Lane.RUN,
            run_id=message.run_id,
            attempt=1,
            body=message.body,
            now=now,
            traceparent=message.traceparent,
        )

    def on_start(
        self,
        spec: FlowSpec,
        message: Envelope[Any],
        now: float,
        *,
        redelivered: bool,
        planned: Dispatch | None = None,
        pre: Hooked | None = None,
    ) -> Decision:
        """PENDING -> RUNNING at the first step (or ended by its pre hook)."""
        first = spec.steps[0]
        planned = planned or self.start_dispatch(spec, message, now)
        pre = pre or Hooked(planned.command)
        expect = Position(RunState.PENDING, 0, 0, Phase.QUEUED)
        started = run_event(EventKind.RUN_STARTED, now)
        run_id, cause = message.run_id, message.message_id
        if pre.error is not None:
            return finish(
                run_id,
                expect,
                RunState.FAILED,
                now,
                cause,
                events=[started],
                error=hook_error(pre.error, first),
                fields=RunFields(step_input=message.body, hook_pending=True),
            )
        if pre.message is None:
            return finish(
                run_id,
                expect,
                RunState.SUCCEEDED,
                now,
                cause,
                events=[started, stopped_event(first, now)],
                result=message.body,
            )
        command = pre.message
        change = Transition(
            run_id=run_id,
            expect=expect,
            new=Position(RunState.RUNNING, 0, 1, Phase.DISPATCHED),
            cause=cause,
            now=now,
            step_name=first.name,
            fields=RunFields(step_input=command.body),
            events=[started, planned.event],
            timers_add=planned.timers,
        )
        return Commit(change, command, republish=redelivered)

    # -- resume ------------------------------------------------------------------------------
    @staticmethod
    def resume_runs_pre_hook(record: RunRecord, message: Envelope[Any]) -> bool:
        """A resumed run whose pre hook never ran (it failed) runs it now."""
        return record.hook_pending and message.lane is Lane.RUN

    def resume_dispatch(
        self, spec: FlowSpec, record: RunRecord, message: Envelope[Any], now: float
    ) -> Dispatch | Reject:
        """The resumed step's command (with the stored input of the step, or for a
        compensation the output of the step it undoes)."""
        step = spec.step(message.step)
        if step is None:
            return Reject(f"step {message.step} is past the end of {record.flow!r}")
        lane = message.lane
        body = record.step_input if lane is Lane.RUN else record.outputs.get(step.index)
        return self.planner.dispatch(
            spec,
            step,
            lane=lane,
            run_id=record.run_id,
            attempt=message.attempt,
            body=body,
            now=now,
            traceparent=message.traceparent,
        )

    def on_resume(
        self,
        spec: FlowSpec,
        record: RunRecord,
        message: Envelope[Any],
        now: float,
        *,
        redelivered: bool,
        planned: Dispatch | None = None,
        pre: Hooked | None = None,
    ) -> Decision:
        """QUEUED -> DISPATCHED for the step a retry or a compensating cancel queued."""
        planned_or_reject = planned or self.resume_dispatch(spec, record, message, now)
        if isinstance(planned_or_reject, Reject):
            return planned_or_reject
        planned = planned_or_reject
        step = spec.steps[message.step]
        lane = message.lane
        expect = Position(lane_state(lane), step.index, message.attempt, Phase.QUEUED)
        command: Envelope[Any] = planned.command
        fields = RunFields()
        if pre is not None:
            if pre.error is not None:
                return finish(
                    record.run_id,
                    expect,
                    RunState.FAILED,
                    now,
                    message.message_id,
                    events=[],
                    error=hook_error(pre.error, step),
                )
            if pre.message is None:
                return finish(
                    record.run_id,
                    expect,
                    RunState.SUCCEEDED,
                    now,
                    message.message_id,
                    events=[stopped_event(step, now)],
                    result=planned.command.body,
                )
            command = pre.message
            fields = RunFields(hook_pending=None, step_input=command.body)
        change = Transition(
            run_id=record.run_id,
            expect=expect,
            new=Position(lane_state(lane), step.index, message.attempt, Phase.DISPATCHED),
            cause=message.message_id,
            now=now,
            step_name=step.name,
            fields=fields,
            events=[planned.event],
            timers_add=planned.timers,
        )
        return Commit(change, command, republish=redelivered)


__all__ = ["Starts"]
