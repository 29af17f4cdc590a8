"""The join policies of group steps (:mod:`orch_serv.flow.groups`): pure, no I/O.

Given how many members a group has and how each ended member ended, :func:`decide` says
whether the group is over, whether it succeeded, and whether the members still running are
to be cancelled. Only SUCCEEDED counts as a success: a member that failed after its retries,
timed out, was cancelled or compensated counts as failed. The verdict only moves one way: once
over, more ended members never turn it around (so two checks that race agree).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from orch_serv.constants import RunState
from orch_serv.flow.groups import GroupSpec


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the join makes of the members so far."""

    over: bool
    ok: bool = False
    #: Cancel the members still running (the group was decided before they ended).
    cancel_rest: bool = False
    #: Why the group failed, in words ("" when it did not).
    reason: str = ""


PENDING = Verdict(over=False)


def decide(group: GroupSpec, total: int, ended: Mapping[int, RunState]) -> Verdict:
    """The verdict of ``group`` with ``total`` members, ``ended`` of which ended so far
    (member index -> terminal state)."""
    succeeded = sum(1 for s in ended.values() if s is RunState.SUCCEEDED)
    failed = len(ended) - succeeded
    remaining = total - len(ended)
    everyone = remaining == 0
    join = group.join
    if join == "collect":
        return Verdict(over=True, ok=True) if everyone else PENDING
    if join == "all":
        if not everyone:
            return PENDING
        return Verdict(over=True, ok=True) if failed == 0 else _failed(ended, total, False)
    if join == "fail_fast":
        if failed:
            return _failed(ended, total, True)
        return Verdict(over=True, ok=True) if everyone else PENDING
    need = 1 if join == "any" else (group.n or 1)
    if succeeded >= need:
        return Verdict(over=True, ok=True, cancel_rest=True)
    if succeeded + remaining < need:
        verdict = _failed(ended, total, True)
        if total < need:
            return Verdict(True, False, True, f"{need} success(es) needed, {total} member(s)")
        return verdict
    return PENDING


def _failed(ended: Mapping[int, RunState], total: int, cancel: bool) -> Verdict:
    counts = Counter(s.value for s in ended.values() if s is not RunState.SUCCEEDED)
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return Verdict(
        True, False, cancel, f"{sum(counts.values())} of {total} member(s) failed ({states})"
    )


def counts(total: int, started: int, ended: Mapping[int, RunState]) -> dict[str, int]:
    """Members by state: each terminal state, ``RUNNING`` (started, not ended) and
    ``WAITING`` (not started yet)."""
    by_state = Counter(s.value for s in ended.values())
    by_state["RUNNING"] = max(started - len(ended), 0)
    by_state["WAITING"] = max(total - max(started, len(ended)), 0)
    return {k: v for k, v in sorted(by_state.items()) if v}


__all__ = ["PENDING", "Verdict", "counts", "decide"]
