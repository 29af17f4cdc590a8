"""Starts, resumes and replies: the decisions that move a run forward (pure)."""

from __future__ import annotations

from orch_serv.orchestrator.core.dispatch import Planner
from orch_serv.orchestrator.core.hooks import Hooked, ReplyHooks
from orch_serv.orchestrator.core.outcomes import Outcomes
from orch_serv.orchestrator.core.replies import Replies
from orch_serv.orchestrator.core.starts import Starts


class Advance(Starts, Replies):
    """Decisions for START, RESUME and REPLY messages."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.outcomes = Outcomes(planner)


__all__ = ["Advance", "Hooked", "ReplyHooks"]
