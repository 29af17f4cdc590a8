"""The compare-and-set check of a transition, as a pure function: the same rule the store's
transition script applies atomically in Redis (``store/lua/transition.lua``). The engine never
calls it (the store decides, atomically); it states the rule in Python so that the core's unit
tests can say what a decision does to a run in any state, and a contract test holds the script
to it."""

from __future__ import annotations

from dataclasses import dataclass

from orch_serv.constants import Phase, RunState
from orch_serv.store.base import Outcome, Transition


@dataclass(frozen=True, slots=True)
class Stored:
    """Where a stored run is, and the cause of its last transition."""

    state: RunState
    step: int
    attempt: int
    phase: Phase | None
    cause: str | None = None


def check(current: Stored | None, change: Transition) -> tuple[Outcome, str | None]:
    """(APPLIED, None), or why not: (ALREADY_APPLIED, 'duplicate') when the run's last
    transition had the same cause, else (STALE, 'run_finished' | 'stale_attempt' |
    'stale_phase' | 'stale_step'); (NOT_FOUND, None) for no run."""
    if current is None:
        return Outcome.NOT_FOUND, None
    expect = change.expect
    states = {expect.state, *change.also_states}
    if (
        current.state in states
        and (expect.step is None or current.step == expect.step)
        and (expect.attempt is None or current.attempt == expect.attempt)
        and (expect.phase is None or current.phase is expect.phase)
    ):
        return Outcome.APPLIED, None
    if current.cause is not None and current.cause == change.cause:
        return Outcome.ALREADY_APPLIED, "duplicate"
    if current.state.terminal:
        return Outcome.STALE, "run_finished"
    if expect.step is not None and current.step == expect.step:
        if expect.attempt is None or current.attempt != expect.attempt:
            return Outcome.STALE, "stale_attempt"
        return Outcome.STALE, "stale_phase"
    return Outcome.STALE, "stale_step"


__all__ = ["Stored", "check"]
