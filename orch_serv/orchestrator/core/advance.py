"""Starts, resumes and replies: the decisions that move a run forward (pure)."""

from __future__ import annotations

from orch_serv.orchestrator.core.hooks import Hooked, ReplyHooks
from orch_serv.orchestrator.core.replies import Replies
from orch_serv.orchestrator.core.starts import Starts


class Advance(Starts, Replies):
    """Decisions for START, RESUME and REPLY messages."""


__all__ = ["Advance", "Hooked", "ReplyHooks"]
