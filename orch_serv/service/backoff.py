"""Exponential back-off for the service runtime's retries (starting up, giving a command
back after a broker error)."""

from __future__ import annotations

import asyncio


class Backoff:
    """Delays that double from ``initial`` up to ``maximum`` seconds; :meth:`reset` after a
    success starts again from ``initial``."""

    def __init__(self, initial: float = 0.1, maximum: float = 5.0) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("back-off needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next(self) -> float:
        """The delay to wait after one more failure."""
        delay = min(self.maximum, self.initial * 2.0 ** min(self.failures, 62))
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Forget the failures so far."""
        self.failures = 0


async def pause(delay: float, stop: asyncio.Event) -> bool:
    """Wait ``delay`` seconds unless ``stop`` is set first; True if it was."""
    try:
        async with asyncio.timeout(delay):
            await stop.wait()
    except TimeoutError:
        return False
    return True


__all__ = ["Backoff", "pause"]
