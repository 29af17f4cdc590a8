"""The events and errors the engine records: pure constructors, no I/O."""

from __future__ import annotations

from typing import Any

from orch_serv.constants import EventKind, EventStatus, RunState, TimerKind
from orch_serv.flow.spec import StepSpec
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import Event

#: Error types the engine itself produces when a clock runs out.
TIMEOUT_ERRORS = frozenset(
    {
        "DispatchTimeout",
        "HeartbeatTimeout",
        "ExecutionTimeout",
        "StepTotalTimeout",
        "RunDeadlineExceeded",
    }
)

#: The run event that records each terminal state.
FINISH_EVENT = {
    RunState.SUCCEEDED: EventKind.RUN_SUCCEEDED,
    RunState.FAILED: EventKind.RUN_FAILED,
    RunState.TIMED_OUT: EventKind.RUN_TIMED_OUT,
    RunState.CANCELLED: EventKind.RUN_CANCELLED,
    RunState.COMPENSATED: EventKind.RUN_COMPENSATED,
    RunState.COMPENSATION_FAILED: EventKind.RUN_COMPENSATION_FAILED,
}

_TIMEOUTS = {
    TimerKind.DISPATCH: ("DispatchTimeout", "no service reported starting the command"),
    TimerKind.HEARTBEAT: ("HeartbeatTimeout", "the handler stopped sending heartbeats"),
    TimerKind.EXECUTION: ("ExecutionTimeout", "the handler did not reply in time"),
    TimerKind.TOTAL: ("StepTotalTimeout", "the step ran out of time across its attempts"),
    TimerKind.DEADLINE: ("RunDeadlineExceeded", "run deadline exceeded"),
}


def timeout_error(kind: TimerKind, seconds: float | None, why: str | None = None) -> ErrorInfo:
    """The error recorded when a step clock runs out (``why``: what the orchestrator found
    out about the cause, appended to the message)."""
    name, text = _TIMEOUTS[kind]
    limit = f" within {seconds:g} s" if seconds else ""
    return ErrorInfo(
        type=name,
        message=f"{text}{limit}{f': {why}' if why else ''}",
        retryable=kind not in (TimerKind.TOTAL, TimerKind.DEADLINE),
    )


def hook_error(exc: BaseException, step: StepSpec) -> ErrorInfo:
    """The error recorded when a pre or post hook of ``step`` raised."""
    return ErrorInfo(
        type="HookError",
        message=f"a hook of step {step.name!r} raised {type(exc).__name__}: {exc}",
        retryable=False,
    )


def step_event(
    kind: EventKind,
    step: StepSpec,
    attempt: int,
    now: float,
    *,
    error: ErrorInfo | None = None,
    component: str | None = None,
    duration_ms: float | None = None,
    message_id: str | None = None,
    body: Any = None,
) -> Event:
    """An event about one attempt of a step."""
    return Event(  # step name and service: filled in from the flow version when read
        kind=kind,
        time=now,
        step=step.index,
        attempt=attempt,
        status=EventStatus.FAILED if error else EventStatus.OK,
        component=component if component not in (None, step.service) else None,
        duration_ms=duration_ms,
        error=error,
        message_id=message_id,
        body=body,
    )


def run_event(
    kind: EventKind, now: float, *, error: ErrorInfo | None = None, reason: str | None = None
) -> Event:
    """An event about the run as a whole."""
    failed = error is not None or kind in (
        EventKind.RUN_FAILED,
        EventKind.RUN_TIMED_OUT,
        EventKind.RUN_COMPENSATION_FAILED,
    )
    return Event(
        kind=kind,
        time=now,
        status=EventStatus.FAILED if failed else EventStatus.OK,
        error=error,
        reason=reason,
    )


def stopped_event(step: StepSpec, now: float) -> Event:
    """A pre hook returned None: the run ends SUCCEEDED before ``step``."""
    return Event(
        kind=EventKind.RUN_STOPPED,
        time=now,
        step=step.index,
        step_name=step.name,
        component="orchestrator",
        reason="pre hook returned None",
    )


def refused_status_event(status: Event) -> Event:
    """The event recorded instead of ``status`` when the run's status model refuses it (the
    store fills in the refusing rule as its reason)."""
    return Event(
        kind=EventKind.STATUS_REFUSED,
        time=status.time,
        step=status.step,
        step_name=status.step_name,
        attempt=status.attempt,
        status=EventStatus.FAILED,
        component=status.component,
        body=status.body,
        message_id=status.message_id,
        name=status.name,
        message=status.message,
    )


__all__ = [
    "FINISH_EVENT",
    "TIMEOUT_ERRORS",
    "hook_error",
    "refused_status_event",
    "run_event",
    "step_event",
    "stopped_event",
    "timeout_error",
]
