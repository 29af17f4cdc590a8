"""Stranded runs: a client that died after creating a run (or after a retry's transition)
never sent its START (or RESUME). The housekeeping finds such runs; this decides, purely,
whether to send the lost message again or to end the run."""

from __future__ import annotations

from orch_serv.constants import Lane, RunState
from orch_serv.messages import ids
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.orchestrator.core.decision import Commit, Send
from orch_serv.orchestrator.core.dispatch import resume_message, start_message
from orch_serv.orchestrator.core.outcomes import finish
from orch_serv.store.base import Position, RunRecord


def recovery_scope(record: RunRecord) -> str:
    """The position a re-sent message is counted against (a later stranding of the same run
    at another step starts counting afresh)."""
    return f"{record.state.value}:{record.step}:{record.attempt}"


def recover(
    record: RunRecord,
    now: float,
    *,
    missing: str | None,
    sent: int,
    max_attempts: int,
) -> Commit | Send:
    """Send the run's START or RESUME again; or end it FAILED when no orchestrator can run
    its flow version (``missing``: why) or when it was sent ``max_attempts`` times already
    (``sent`` counts this one) and never taken."""
    error: ErrorInfo | None = None
    if missing is not None:
        error = ErrorInfo(type="FlowNotFound", message=missing, retryable=False)
    elif sent > max_attempts:
        what = "START" if record.state is RunState.PENDING else "RESUME"
        error = ErrorInfo(
            type="StartUndeliverable",
            message=f"the run's {what} was sent {sent - 1} times and never taken "
            "(it may be in the dead-letter queue: `orch-serv dlq list`)",
            retryable=False,
        )
    if error is not None:
        expect = Position(record.state, record.step, record.attempt, record.phase)
        return finish(
            record.run_id,
            expect,
            RunState.FAILED,
            now,
            ids.lost_cause(record.run_id),
            events=[],
            error=error,
        )
    if record.state is RunState.PENDING:
        return Send(
            start_message(record.run_id, record.kind, record.flow, record.version, record.input)
        )
    lane = Lane.COMPENSATE if record.state is RunState.COMPENSATING else Lane.RUN
    return Send(
        resume_message(
            record.run_id,
            record.kind,
            record.flow,
            record.version,
            step=record.step,
            attempt=record.attempt,
            lane=lane,
        )
    )


__all__ = ["recover", "recovery_scope"]
