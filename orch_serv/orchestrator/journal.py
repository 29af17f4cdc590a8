"""The log lines the engine writes when a transition ends a run or starts undoing it."""

from __future__ import annotations

from orch_serv.constants import RunState
from orch_serv.logs import get_logger
from orch_serv.store.base import Transition

log = get_logger("orchestrator")


def log_outcome(change: Transition) -> None:
    """``run_finished`` for a transition to a terminal state, ``run_compensating`` (once,
    with the failure) for one that starts compensating; nothing otherwise."""
    error = change.fields.get("error")
    failure = error if isinstance(error, dict) else None
    if change.new.state.terminal:
        log.info(
            "run_finished",
            run_id=change.run_id,
            state=change.new.state.value,
            error=failure.get("type") if failure else None,
            reason=failure.get("message") if failure else None,
        )
    elif change.new.state is RunState.COMPENSATING and failure:
        log.info(
            "run_compensating",
            run_id=change.run_id,
            error=failure.get("type"),
            reason=failure.get("message"),
        )


__all__ = ["log_outcome"]
