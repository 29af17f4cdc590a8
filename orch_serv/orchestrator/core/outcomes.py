"""How a step's attempt ends: finishing the run, retrying, giving up, compensating. Pure:
each function returns the decision; nothing here reads or writes anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from orch_serv.constants import EventKind, Lane, Phase, RunState
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.orchestrator.core.decision import Commit, NeedRun
from orch_serv.orchestrator.core.dispatch import GiveUp, Planner, lane_state
from orch_serv.orchestrator.core.events import FINISH_EVENT, run_event, step_event
from orch_serv.store.base import Event, Position, Transition
from orch_serv.store.shape import RunFields


def finish(
    run_id: str,
    expect: Position,
    state: RunState,
    now: float,
    cause: str,
    *,
    events: list[Event],
    error: ErrorInfo | None = None,
    result: Any = None,
    fields: RunFields | None = None,
    ignored: Event | None = None,
    at_step: StepSpec | None = None,
) -> Commit:
    """End the run in ``state`` (``at_step``: the step a retry would start from)."""
    data = fields or RunFields()
    if error is not None:
        data = replace(data, error=error)
    if state is RunState.SUCCEEDED:
        data = replace(data, result=result)
    change = Transition(
        run_id=run_id,
        expect=expect,
        new=Position(
            state, None if at_step is None else at_step.index, None if at_step is None else 0
        ),
        cause=cause,
        now=now,
        step_name=None if at_step is None else at_step.name,
        fields=data,
        events=[*events, run_event(FINISH_EVENT[state], now, error=error)],
        ignored=ignored,
    )
    return Commit(change)


class Outcomes:
    """Failure, give-up and compensation decisions for one orchestrator's planner."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    def attempt_failed(
        self,
        spec: FlowSpec,
        run_id: str,
        lane: Lane,
        step: StepSpec,
        attempt: int,
        error: ErrorInfo,
        now: float,
        *,
        cause: str,
        expect: Position,
        failed: Event,
        outputs: Mapping[int, Any] | None,
        ignored: Event | None = None,
        republish: bool = True,
        final: bool = False,
    ) -> Commit | NeedRun:
        """An attempt failed (an error reply or a clock ran out): retry it, or give up."""
        decision = self.planner.on_failure(
            spec, step, lane=lane, run_id=run_id, attempt=attempt, error=error, now=now, final=final
        )
        if isinstance(decision, GiveUp):
            return self.give_up(
                spec,
                run_id,
                step,
                error,
                now,
                cause,
                expect,
                [failed],
                decision,
                outputs=outputs,
                ignored=ignored,
                republish=republish,
            )
        scheduled = step_event(
            EventKind.RETRY_SCHEDULED,
            step,
            decision.attempt,
            now,
            component="orchestrator",
            body={"delay": round(decision.delay, 3), "after_attempt": attempt},
        )
        change = Transition(
            run_id=run_id,
            expect=expect,
            new=Position(lane_state(lane), step.index, decision.attempt, Phase.BACKOFF),
            cause=cause,
            now=now,
            events=[failed, scheduled],
            ignored=ignored,
            timers_remove=self.planner.attempt_timers(run_id, lane, step, attempt),
            timers_add=[decision.timer],
        )
        return Commit(change, republish=republish)

    def give_up(
        self,
        spec: FlowSpec,
        run_id: str,
        step: StepSpec,
        error: ErrorInfo,
        now: float,
        cause: str,
        expect: Position,
        events: list[Event],
        decision: GiveUp,
        *,
        outputs: Mapping[int, Any] | None,
        fields: RunFields | None = None,
        ignored: Event | None = None,
        republish: bool = True,
        at_step: StepSpec | None = None,
    ) -> Commit | NeedRun:
        """The step failed for good: end the run, or start compensating first."""
        comp = decision.compensate
        if comp is None:
            return finish(
                run_id,
                expect,
                decision.state,
                now,
                cause,
                events=events,
                error=error,
                fields=fields,
                ignored=ignored,
                at_step=at_step,
            )
        data = replace(fields or RunFields(), error=error, outcome=decision.state)
        return self.compensate(
            spec,
            run_id,
            comp,
            now,
            cause,
            expect,
            events,
            outputs=outputs,
            fields=data,
            ignored=ignored,
            republish=republish,
        )

    def compensate(
        self,
        spec: FlowSpec,
        run_id: str,
        step: StepSpec,
        now: float,
        cause: str,
        expect: Position,
        events: list[Event],
        *,
        outputs: Mapping[int, Any] | None,
        fields: RunFields | None = None,
        ignored: Event | None = None,
        republish: bool = True,
        traceparent: str | None = None,
    ) -> Commit | NeedRun:
        """Dispatch the compensation of ``step`` with the output that step produced (kept in
        the run, or among the ``fields`` this very transition writes). Without the stored
        outputs, asks for them (:class:`NeedRun`)."""
        if outputs is None:
            return NeedRun()
        known = {**outputs, **(fields.outputs if fields else {})}
        plan = self.planner.dispatch(
            spec,
            step,
            lane=Lane.COMPENSATE,
            run_id=run_id,
            attempt=1,
            body=known.get(step.index),
            now=now,
            traceparent=traceparent,
        )
        change = Transition(
            run_id=run_id,
            expect=expect,
            new=Position(RunState.COMPENSATING, step.index, 1, Phase.DISPATCHED),
            cause=cause,
            now=now,
            step_name=step.name,
            fields=fields or RunFields(),
            events=[*events, plan.event],
            ignored=ignored,
            clear_timers=True,
            timers_add=plan.timers,
        )
        return Commit(change, plan.command, republish=republish)


class Decider:
    """What every group of decisions works with: the planner and the failure outcomes."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.outcomes = Outcomes(planner)


__all__ = ["Decider", "Outcomes", "finish"]
