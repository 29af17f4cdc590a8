"""Calling the orchestrator-side hooks of a step (orch_serv's pre/post handler functions)."""

from __future__ import annotations

import inspect
from typing import Any

from orch_serv.flow.hooks import Hook
from orch_serv.messages.envelope import Envelope


async def call_hook(hook: Hook | None, message: Envelope[Any]) -> Envelope[Any] | None:
    """Run a sync or async hook on a copy of ``message``; returns what the hook returned."""
    if hook is None:
        return message
    result = hook(message.model_copy(deep=True))
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, Envelope):
        raise TypeError(
            f"hook {hook!r} must return the message or None, not {type(result).__name__}"
        )
    return result
