"""Tracking the deliveries a consumer is working on, to drain them on shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from orch_serv.transport.base import Delivery


class Inflight:
    """Counts running delivery handlers; :meth:`drain` waits for them, then cancels."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._tasks)

    def wrap(
        self, handler: Callable[[Delivery], Awaitable[None]]
    ) -> Callable[[Delivery], Awaitable[None]]:
        """A delivery handler that registers itself while it runs. A handler cancelled by
        :meth:`drain` gives its message back to the queue for another consumer."""

        async def tracked(delivery: Delivery) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self._idle.clear()
            try:
                await handler(delivery)
            except asyncio.CancelledError:
                try:
                    await delivery.requeue()
                except Exception:
                    pass
            finally:
                self._tasks.discard(task)
                if not self._tasks:
                    self._idle.set()

        return tracked

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for running handlers, then cancel the rest; returns
        how many had to be cancelled."""
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
            return 0
        except TimeoutError:
            left = list(self._tasks)
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            return len(left)
