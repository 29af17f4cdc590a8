"""Message ids, all built here: the idempotency contract services may rely on
(docs/protocol.md, "Message ids").

Every id derives from the run id and the position it is about, so a message sent again for
the same thing (a redelivery, a re-publish after a crash, a second orchestrator replica) has
the same id:

=====================  ===================================================
message                id
=====================  ===================================================
command                ``{run}:{step}:{attempt}`` (compensation:
                       ``{run}:c{step}:{attempt}``)
its reply              ``{command}:reply``
its heartbeats         ``{command}:beat:{n}`` (n counts per handler run)
its status events      ``{command}:status:{n}``
start                  ``{run}:start``
resume                 ``{run}:resume:{lane}:{step}:{attempt}``
cancel notice          ``{command}:cancel``, or ``{run}:cancel`` for a run
=====================  ===================================================

Causes of transitions that no message carries use the same scheme: ``{run}:cancel`` and
``{run}:retry:{attempt}`` (client actions), ``{run}:lost`` (a stranded run ended by the
housekeeping); timers use their member (``store/timers.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from orch_serv.constants import Lane

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_run_id(accept: Callable[[str], bool] | None = None) -> str:
    """A random 128-bit run id in 22 base-62 characters (it is in every key and index entry
    of the run, so shorter than hex pays off in memory); with ``accept``, the first such id
    it accepts (a run started with an idempotency key must live in the key's shard)."""
    while True:
        value = uuid.uuid4().int
        chars = []
        for _ in range(22):
            value, digit = divmod(value, 62)
            chars.append(_ALPHABET[digit])
        run_id = "".join(reversed(chars))
        if accept is None or accept(run_id):
            return run_id


def command_id(run_id: str, step: int, attempt: int, lane: Lane = Lane.RUN) -> str:
    """The command of (run, step, attempt): the id a handler makes its effects idempotent by."""
    prefix = "c" if lane is Lane.COMPENSATE else ""
    return f"{run_id}:{prefix}{step}:{attempt}"


def reply_id(command: str) -> str:
    """The reply to ``command`` (every reply to one command has this one id)."""
    return f"{command}:reply"


def heartbeat_id(command: str, seq: int) -> str:
    """The ``seq``-th heartbeat (the first one is the start notice) of ``command``."""
    return f"{command}:beat:{seq}"


def status_id(command: str, seq: int) -> str:
    """The ``seq``-th status event a handler of ``command`` records."""
    return f"{command}:status:{seq}"


def start_id(run_id: str) -> str:
    """The START of a created run."""
    return f"{run_id}:start"


def resume_id(run_id: str, lane: Lane, step: int, attempt: int) -> str:
    """The RESUME of a run queued at (lane, step, attempt) by a retry or a compensating cancel."""
    return f"{run_id}:resume:{lane.value}:{step}:{attempt}"


def cancel_notice_id(run_id: str, command: str | None = None) -> str:
    """The notice that stops ``command`` (or every command of the run)."""
    return f"{command or run_id}:cancel"


def once_token(command: str, key: str | None = None) -> str:
    """What ``ctx.once(key)`` marks: the command itself, or one named effect of it."""
    return command if key is None else f"{command}:{key}"


def cancel_cause(run_id: str) -> str:
    """The cause recorded by ``Client.cancel``."""
    return f"{run_id}:cancel"


def retry_cause(run_id: str, attempt: int) -> str:
    """The cause recorded by ``Client.retry`` (the new attempt)."""
    return f"{run_id}:retry:{attempt}"


def lost_cause(run_id: str) -> str:
    """The cause recorded when the housekeeping ends a stranded run."""
    return f"{run_id}:lost"


__all__ = [
    "cancel_cause",
    "cancel_notice_id",
    "command_id",
    "heartbeat_id",
    "lost_cause",
    "new_run_id",
    "once_token",
    "reply_id",
    "resume_id",
    "retry_cause",
    "start_id",
    "status_id",
]
