"""What the user's hooks made of a message. Hooks are user code, so the shell runs them; the
core decides from what they returned (or raised)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core.dispatch import Dispatch


@dataclass(frozen=True, slots=True)
class Hooked:
    """What a hook made of a message: the message (changed or not), None (a pre hook that
    returns None stops the run; a post hook's None keeps the reply), or what it raised."""

    message: Envelope[Any] | None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class ReplyHooks:
    """The hooks around a successful reply: the replying step's post hook, the next step's
    dispatch built from what the post hook forwarded, and that step's pre hook."""

    post: Hooked
    planned: Dispatch | None = None
    pre: Hooked | None = None


__all__ = ["Hooked", "ReplyHooks"]
