"""What a handler knows about the step it executes, and how it talks back to its run."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from orch_serv.constants import EventStatus, MessageKind
from orch_serv.messages.envelope import Envelope, StatusInfo

Publisher = Callable[[Envelope[Any]], Awaitable[None]]


class HandlerContext:
    """Passed to a handler that takes a second parameter.

    ``await ctx.status("validated", lineage={"files_incoming": [...], "files_outgoing": [...]})``
    records a status event on the run (``ctx.status_sync`` from a synchronous handler).
    """

    def __init__(
        self,
        command: Envelope[Any],
        *,
        service: str,
        publish: Publisher,
        loop: asyncio.AbstractEventLoop,
        logger: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self.message = command
        self.service = service
        self._publish = publish
        self._loop = loop
        self._seq = itertools.count(1)
        self._cancelled = threading.Event()
        self._task: asyncio.Future[Any] | None = None
        self.log = logger.bind(
            run_id=command.run_id, step=command.step, attempt=command.attempt, service=service
        )

    @property
    def run_id(self) -> str:
        """The run (trace id / instance token) this step belongs to."""
        return self.message.run_id

    @property
    def step(self) -> int:
        """0-based step index."""
        return self.message.step

    @property
    def step_name(self) -> str | None:
        """The step's block name."""
        return self.message.step_name

    @property
    def attempt(self) -> int:
        """1-based attempt number."""
        return self.message.attempt

    @property
    def message_id(self) -> str:
        """'{run_id}:{step}:{attempt}': stable across redeliveries, for idempotent effects."""
        return self.message.message_id

    @property
    def flow(self) -> str | None:
        """The flow name (None for a single-block run)."""
        return self.message.flow

    @property
    def cancelled(self) -> bool:
        """True once the run (or this attempt) was cancelled or timed out. Synchronous
        handlers should check it and return early; async handlers are cancelled outright."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Mark the work cancelled and cancel the async handler's task (worker use)."""
        self._cancelled.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def attach(self, task: asyncio.Future[Any]) -> None:
        """The task running an async handler (worker use); cancelled at once if a cancel
        notice arrived before it started."""
        self._task = task
        if self.cancelled:
            task.cancel()

    async def heartbeat(self, progress: Any = None) -> None:
        """Tell the orchestrator the handler is alive (resets the heartbeat clock); the
        ``progress`` (any JSON) shows in the run's history."""
        beat = self.message.answer(
            MessageKind.HEARTBEAT,
            f":beat:{next(self._seq)}",
            service=self.service,
            progress=progress,
        )
        await self._publish(beat)

    def heartbeat_sync(self, progress: Any = None) -> None:
        """:meth:`heartbeat` for synchronous handlers running in the thread pool."""
        asyncio.run_coroutine_threadsafe(self.heartbeat(progress), self._loop).result()

    async def status(
        self,
        name: str,
        *,
        lineage: dict[str, Any] | None = None,
        status: EventStatus | str = EventStatus.OK,
        message: str | None = None,
    ) -> None:
        """Record a status event (with an optional lineage body) on the run; confirmed."""
        event = self.message.answer(
            MessageKind.STATUS,
            f":status:{next(self._seq)}",
            service=self.service,
            status=StatusInfo(
                name=name, status=EventStatus(status), lineage=lineage, message=message
            ),
        )
        await self._publish(event)

    def status_sync(
        self,
        name: str,
        *,
        lineage: dict[str, Any] | None = None,
        status: EventStatus | str = EventStatus.OK,
        message: str | None = None,
    ) -> None:
        """:meth:`status` for synchronous handlers running in the thread pool."""
        future = asyncio.run_coroutine_threadsafe(
            self.status(name, lineage=lineage, status=status, message=message), self._loop
        )
        future.result()
