"""Whether a command is still current: the rule a service worker with a run store applies
before it starts a handler.

A command is current while its run is in the state of the command's lane (``RUNNING`` for
``run``, ``COMPENSATING`` for ``compensate``) at the command's step and attempt. A command of
a run that was cancelled or finished, or that has moved on to another step or attempt (a
retry, a timeout, a resume), is not: its reply could only be recorded as a late result, so
its handler never starts.

Reading the position costs a Redis round trip before every handler, which is most of a step's
latency on a quiet system; so a worker reads it only for a command that may have waited
(:func:`needs_check`): one older than ``currency_check_after_seconds``, or redelivered. A
younger command was dispatched a moment ago, while its run was at that very step and attempt;
a cancel in that moment reaches the worker as a cancel notice, which :class:`CancelledRuns`
remembers, so the command is skipped all the same.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from orch_serv.constants import lane_state
from orch_serv.messages.envelope import Envelope
from orch_serv.store.base import Position


def stale_reason(position: Position, command: Envelope[Any]) -> str | None:
    """None if ``command`` is current for a run at ``position``, else why it is not."""
    state = position.state
    if state.terminal:
        return f"the run is {state.value}"
    wanted = lane_state(command.lane)
    if state is not wanted:
        return f"the run is {state.value}, a {command.lane.value} command needs {wanted.value}"
    if position.step != command.step:
        return f"the run is at step {position.step}, the command is for step {command.step}"
    if position.attempt != command.attempt:
        return (
            f"the run is at attempt {position.attempt} of step {command.step}, "
            f"the command is for attempt {command.attempt}"
        )
    return None


def needs_check(
    command: Envelope[Any],
    *,
    redelivered: bool,
    after: float,
    now: float,
    listening_since: float,
) -> bool:
    """Whether the run's position must be read before ``command`` starts: it was
    redelivered, or created more than ``after`` seconds ago (or, clocks apart, in the future
    by as much), or before the worker started hearing cancel notices (``listening_since``:
    a run cancelled while no worker listened left no notice to remember)."""
    created = command.created_at
    return redelivered or abs(now - created) >= after or created <= listening_since + after


class CancelledRuns:
    """The runs a worker saw a run-wide cancel notice for lately (bounded; oldest forgotten)."""

    def __init__(self, keep_seconds: float = 600.0, most: int = 10_000) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self.keep_seconds = keep_seconds
        self.most = most

    def add(self, run_id: str, now: float | None = None) -> None:
        """Remember that ``run_id`` was cancelled."""
        self._seen[run_id] = time.monotonic() if now is None else now
        self._seen.move_to_end(run_id)
        while len(self._seen) > self.most:
            self._seen.popitem(last=False)

    def seen(self, run_id: str, now: float | None = None) -> bool:
        """Whether ``run_id`` was cancelled less than ``keep_seconds`` ago."""
        at = self._seen.get(run_id)
        if at is None:
            return False
        return (time.monotonic() if now is None else now) - at < self.keep_seconds

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and self.seen(run_id)


__all__ = ["CancelledRuns", "needs_check", "stale_reason"]
