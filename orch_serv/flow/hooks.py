"""The type of orchestrator-side hooks (orch_serv's pre/post handler functions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from orch_serv.messages.envelope import Envelope

#: A hook takes the message and returns it (possibly changed), a new one, or None.
Hook: TypeAlias = Callable[
    [Envelope[Any]], "Envelope[Any] | Awaitable[Envelope[Any] | None] | None"
]
#: How a hook is given in a definition: a callable, the name of a flow method, or None.
HookSpec: TypeAlias = Hook | str | None
