"""What a dispatch sets up (the command, its event, its timers) and what a failed attempt
leads to (a retry, or giving up): pure, no I/O."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from orch_serv.constants import EventKind, Lane, MessageKind, RunState, TimerKind, lane_state
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.messages import ids
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.orchestrator.core.events import TIMEOUT_ERRORS
from orch_serv.store.base import Event
from orch_serv.store.timers import TimerId

NO_RETRY = RetryPolicy()
#: The timers of one attempt of a step (a wait step's: its next check as well).
_ATTEMPT_TIMERS = (TimerKind.DISPATCH, TimerKind.HEARTBEAT, TimerKind.EXECUTION)
_WAIT_TIMERS = (*_ATTEMPT_TIMERS, TimerKind.WAIT)
#: The parametrised envelope class, made once (``Envelope[Any]`` is a lookup per use).
_COMMAND = Envelope[Any]
#: A command's ``created_at``: wall-clock time, what the envelope's default would take.
_wall_clock = time.time


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A command ready to publish, with the event and timers that go with it."""

    command: Envelope[Any]
    event: Event
    timers: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Retry:
    """Try the step again after ``delay`` seconds."""

    attempt: int
    delay: float
    timer: tuple[str, float]


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The step failed for good; the run ends in ``state`` (or compensates first)."""

    state: RunState
    compensate: StepSpec | None


class Planner:
    """Computes dispatches and failure outcomes for one orchestrator's settings."""

    def __init__(self, defaults: Timeouts, reply_to: str, rng: random.Random | None = None):
        self.defaults = defaults
        self.reply_to = reply_to
        self.rng = rng or random.Random()
        self._limits: dict[int, tuple[StepSpec, Timeouts]] = {}

    def timeouts(self, step: StepSpec) -> Timeouts:
        """The step's effective limits (block, then flow, then settings); computed once per
        step definition."""
        known = self._limits.get(id(step))
        if known is not None and known[0] is step:
            return known[1]
        limits = (step.timeouts or Timeouts()).over(self.defaults)
        if step.kept:  # no service picks a wait or a group up: only its total clock applies
            limits = Timeouts(total=limits.total)
        if len(self._limits) > 10_000:  # definitions come and go only with new versions
            self._limits.clear()
        self._limits[id(step)] = (step, limits)
        return limits

    def dispatch(
        self,
        spec: FlowSpec,
        step: StepSpec,
        *,
        lane: Lane,
        run_id: str,
        attempt: int,
        body: Any,
        now: float,
        source: str | None = None,
        traceparent: str | None = None,
    ) -> Dispatch:
        """The command for (run, lane, step, attempt), its event and its timers."""
        limits = self.timeouts(step)
        compensating = lane is Lane.COMPENSATE
        # Built without validation: every field is the engine's own, and the body was checked
        # where it entered (the decoded start or reply, or the stored step input, which was
        # such a body). Validating it again cost ~8 % of the orchestrator's CPU under load.
        command = _COMMAND.model_construct(
            kind=MessageKind.COMMAND,
            message_id=ids.command_id(run_id, step.index, attempt, lane),
            run_id=run_id,
            flow=spec.name if spec.kind == "flow" else None,
            target=spec.name if spec.kind == "block" else None,
            flow_version=spec.version,
            step=step.index,
            step_name=step.name,
            attempt=attempt,
            lane=lane,
            service=step.service,
            command=step.compensate if compensating else step.command,
            source=source,
            reply_to=self.reply_to,
            traceparent=traceparent,
            notify_start=limits.needs_start_notice,
            body=body,
            # given, not left to the field's default factory: for a C function such as
            # time.time, pydantic's model_construct looks for its signature on every call
            # and fails slowly (~8 % of the orchestrator's CPU under load)
            created_at=_wall_clock(),
        )
        timers: list[tuple[str, float]] = []
        if limits.dispatch:
            timers.append(
                (self.timer(run_id, TimerKind.DISPATCH, lane, step, attempt), now + limits.dispatch)
            )
        if limits.total and attempt == 1:
            timers.append((self.timer(run_id, TimerKind.TOTAL, lane, step, 0), now + limits.total))
        if step.wait is not None and not compensating:
            # A wait sends no command (the engine holds it back): its first check is due now.
            timers.append((self.timer(run_id, TimerKind.WAIT, lane, step, attempt), now))
        elif step.group is not None and not compensating:
            # A group's first check (which starts its members) is due now too; the check
            # detaches the timer from the step's, so that it outlives the step and cancels
            # members left running when the run moves on (orchestrator/groups.py).
            timers.append((self.timer(run_id, TimerKind.GROUP, lane, step, attempt), now))
        # Stored lean: the command id ({run_id}:{step}:{attempt}), the step's name and its
        # service follow from the run and its flow version (filled in when read).
        event = Event(
            kind=EventKind.COMPENSATION_DISPATCHED if compensating else EventKind.STEP_DISPATCHED,
            time=now,
            step=step.index,
            attempt=attempt,
        )
        return Dispatch(command, event, timers)

    @staticmethod
    def timer(run_id: str, kind: TimerKind, lane: Lane, step: StepSpec, attempt: int) -> str:
        """The member name of a step timer."""
        return str(TimerId(run_id, kind, lane, step.index, attempt))

    def attempt_timers(self, run_id: str, lane: Lane, step: StepSpec, attempt: int) -> list[str]:
        """Every per-attempt timer member of (step, attempt), to clear when it ends."""
        kinds = _WAIT_TIMERS if step.wait is not None else _ATTEMPT_TIMERS
        return [self.timer(run_id, kind, lane, step, attempt) for kind in kinds]

    def on_failure(
        self,
        spec: FlowSpec,
        step: StepSpec,
        *,
        lane: Lane,
        run_id: str,
        attempt: int,
        error: ErrorInfo,
        now: float,
        final: bool = False,
    ) -> Retry | GiveUp:
        """Retry the step, or give up (and say how the run ends)."""
        policy = step.retry or NO_RETRY
        if not final and policy.allows(attempt, error.type, error.retryable):
            asked = (error.details or {}).get("retry_after")
            delay = (
                float(asked) if isinstance(asked, int | float) else policy.delay(attempt, self.rng)
            )
            member = self.timer(run_id, TimerKind.RETRY, lane, step, attempt + 1)
            return Retry(attempt + 1, delay, (member, now + delay))
        if lane is Lane.COMPENSATE:
            return GiveUp(RunState.COMPENSATION_FAILED, None)
        outcome = RunState.TIMED_OUT if error.type in TIMEOUT_ERRORS else RunState.FAILED
        return GiveUp(outcome, spec.compensation_before(step.index))


def start_message(
    run_id: str, kind: str, name: str, version: str, body: Any, traceparent: str | None = None
) -> Envelope[Any]:
    """The START of a created run (client -> orchestrator), with ``ids.start_id``."""
    return Envelope[Any](
        kind=MessageKind.START,
        message_id=ids.start_id(run_id),
        run_id=run_id,
        flow=name if kind == "flow" else None,
        target=name if kind == "block" else None,
        flow_version=version,
        traceparent=traceparent,
        body=body,
    )


def resume_message(
    run_id: str, kind: str, name: str, version: str, *, step: int, attempt: int, lane: Lane
) -> Envelope[Any]:
    """The RESUME of a run whose step is QUEUED (after retry or cancel --compensate)."""
    return Envelope[Any](
        kind=MessageKind.RESUME,
        message_id=ids.resume_id(run_id, lane, step, attempt),
        run_id=run_id,
        flow=name if kind == "flow" else None,
        target=name if kind == "block" else None,
        flow_version=version,
        step=step,
        attempt=attempt,
        lane=lane,
    )


__all__ = [
    "NO_RETRY",
    "Dispatch",
    "GiveUp",
    "Planner",
    "Retry",
    "lane_state",
    "resume_message",
    "start_message",
]
