"""What a handler knows about the step it executes, and how it talks back to its run."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

from orch_serv.constants import EventStatus, MessageKind
from orch_serv.exceptions import ConfigurationError
from orch_serv.messages import ids
from orch_serv.messages.envelope import Envelope, StatusInfo
from orch_serv.store.base import RunStore

Publisher = Callable[[Envelope[Any]], Awaitable[None]]


class HandlerContext:
    """Passed to a handler that takes a second parameter.

    ``await ctx.status("validated", lineage={"files_incoming": [...], "files_outgoing": [...]})``
    records a status event on the run (``ctx.status_sync`` from a synchronous handler).
    ``if await ctx.once("charge"): ...`` guards an effect against redeliveries of the
    command (``ctx.once_sync`` from a synchronous handler); see ``docs/handlers.md``.
    """

    def __init__(
        self,
        command: Envelope[Any],
        *,
        service: str,
        publish: Publisher,
        loop: asyncio.AbstractEventLoop,
        logger: structlog.typing.FilteringBoundLogger,
        store: RunStore | None = None,
        once_ttl: float = 7 * 24 * 3600,
    ) -> None:
        self.message = command
        self.service = service
        self._store = store
        self._once_ttl = once_ttl
        self._publish = publish
        self._loop = loop
        self._seq = itertools.count(1)
        self._cancelled = threading.Event()
        self._task: asyncio.Future[Any] | None = None
        self.log = logger.bind(
            run_id=command.run_id,
            step=command.step,
            attempt=command.attempt,
            service=service,
            command=command.command,
            message_id=command.message_id,
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
    def idempotency_key(self) -> str:
        """The natural idempotency key of this execution: the command's deterministic id
        (the same on every redelivery of the command; a retry is a new attempt, a new key).
        Use it as the request id of an external API that deduplicates requests."""
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
            ids.heartbeat_id(self.message.message_id, next(self._seq)),
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
            ids.status_id(self.message.message_id, next(self._seq)),
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

    async def once(self, key: str | None = None, ttl: float | None = None) -> bool:
        """True the first time it is called for this (run, step, attempt, lane) and ``key``,
        False on every later call, including from a redelivery of the command in another
        process: guard an effect with it so that a redelivered command does not repeat it.

        Backed by Redis ``SET NX PX``; the mark expires after ``ttl`` seconds (default
        ``Settings.once_ttl_seconds``). It marks *before* the effect: if the process dies
        between the mark and the effect, the effect never happens on a redelivery either
        (see ``docs/handlers.md``). Raises :class:`~orch_serv.exceptions.ConfigurationError`
        when the service runs without a run store.
        """
        if self._store is None:
            raise ConfigurationError(
                "ctx.once() needs a run store: this service worker was started without one "
                "(give ServiceWorker a store=..., as `orch-serv service` and "
                "Orchestrator.run() do)"
            )
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ctx.once() ttl must be a positive number of seconds, got {ttl!r}")
        token = ids.once_token(self.message.message_id, key)
        return await self._store.mark_once(
            self.run_id, token, self._once_ttl if ttl is None else ttl
        )

    def once_sync(self, key: str | None = None, ttl: float | None = None) -> bool:
        """:meth:`once` for synchronous handlers running in the thread pool."""
        return asyncio.run_coroutine_threadsafe(self.once(key, ttl), self._loop).result()
