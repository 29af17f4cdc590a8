"""Whether a command is still current: the rule a service worker with a run store applies
before it starts a handler.

A command is current while its run is in the state of the command's lane (``RUNNING`` for
``run``, ``COMPENSATING`` for ``compensate``) at the command's step and attempt. A command of
a run that was cancelled or finished, or that has moved on to another step or attempt (a
retry, a timeout, a resume), is not: its reply could only be recorded as a late result, so
its handler never starts.
"""

from __future__ import annotations

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


__all__ = ["stale_reason"]
