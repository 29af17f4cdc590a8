"""One background task an owner starts and stops: the timer loop, the housekeeping, the
presence refresh."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any


class Background:
    """Runs ``work()`` as one task; :meth:`start` and :meth:`stop` are idempotent."""

    def __init__(self, work: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._work = work
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._task is not None

    def start(self) -> None:
        """Start the task unless it runs already."""
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name=self._name)

    async def stop(self) -> bool:
        """Cancel the task and wait for it to end; True if it was running."""
        task, self._task = self._task, None
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True


__all__ = ["Background"]
