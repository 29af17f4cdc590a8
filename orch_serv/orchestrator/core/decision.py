"""What the decision core answers: one typed decision per incoming thing. The engine shell
carries it out (commit, publish, ack) and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orch_serv.messages.envelope import Envelope
from orch_serv.store.base import Beat, Event, Transition


@dataclass(frozen=True, slots=True)
class CancelNotice:
    """Tell every service process to stop the work of a run (``message_id`` None) or of one
    command."""

    run_id: str
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """Apply ``change`` (one compare-and-set). If it applied, publish ``command`` (a service
    command, or a START/RESUME for the orchestrators) and send ``cancel``; if it had applied
    before (the run's last transition was caused by the same message or timer) and
    ``republish``, publish ``command`` again: the first handling may have died before it."""

    change: Transition
    command: Envelope[Any] | None = None
    republish: bool = False
    cancel: CancelNotice | None = None


@dataclass(frozen=True, slots=True)
class RecordBeat:
    """Record a heartbeat (or the start notice); wake the timer loop for ``dues``."""

    beat: Beat
    dues: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordStatus:
    """Append a status event (and the status reached) to a run's history."""

    run_id: str
    event: Event
    status: str | None


@dataclass(frozen=True, slots=True)
class Send:
    """Publish a START or RESUME to the orchestrators (a stranded run's lost message)."""

    message: Envelope[Any]


@dataclass(frozen=True, slots=True)
class Reject:
    """The message cannot be processed: dead-letter it with ``reason``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do (a timer of a run that has ended, say); settle the message."""

    why: str


@dataclass(frozen=True, slots=True)
class NeedRun:
    """Decide again with the run's stored step outputs: a compensation is dispatched with the
    output of the step it undoes, which only the stored run has."""


Decision = Commit | RecordBeat | RecordStatus | Send | Reject | Ignore | NeedRun

__all__ = [
    "CancelNotice",
    "Commit",
    "Decision",
    "Ignore",
    "NeedRun",
    "RecordBeat",
    "RecordStatus",
    "Reject",
    "Send",
]
