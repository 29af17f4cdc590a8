"""The service runtime: consumes a service's queue, runs handlers, replies, then acks.

Order per command (ARCHITECTURE section 7): decode -> check that the command is still
current (with a run store) -> validate the body -> run the handler -> publish the reply and
await its confirm -> ack the command -> run the post-processor. A crash anywhere before the
ack means RabbitMQ redelivers the command: handlers run at least once per (run, step,
attempt), and ``ctx.once`` / the deterministic message id let them be idempotent
(``docs/handlers.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

from orch_serv import observability
from orch_serv.constants import MessageKind
from orch_serv.exceptions import MsgException, StoreError, TransportError, Unroutable
from orch_serv.inflight import Inflight
from orch_serv.logs import bound_context, get_logger
from orch_serv.messages.codec import decode, encode, headers_for
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.service.backoff import Backoff, pause
from orch_serv.service.context import HandlerContext
from orch_serv.service.currency import CancelledRuns, needs_check, stale_reason
from orch_serv.service.definition import Service
from orch_serv.service.invoke import invoke, post_process
from orch_serv.service.replies import build_reply, error_info
from orch_serv.settings import Settings
from orch_serv.store.base import RunStore
from orch_serv.transport.base import Consumer, Delivery, Transport

log = get_logger("service")


class ServiceWorker:
    """Hosts the handlers of one :class:`Service` on a transport.

    With a ``store`` (the run store the orchestrators use), a command whose run was
    cancelled, finished or moved past its step/attempt is acked without running its handler,
    and handlers can use ``ctx.once``. Without one, every command is executed.
    """

    def __init__(
        self,
        service: Service,
        transport: Transport,
        settings: Settings,
        *,
        store: RunStore | None = None,
    ) -> None:
        service.validate()
        self.service = service
        self.transport = transport
        self.settings = settings
        self.store = store
        self._pool = ThreadPoolExecutor(
            max_workers=settings.handler_threads, thread_name_prefix=f"svc-{service.name}"
        )
        self._consumer: Consumer | None = None
        self._control: Consumer | None = None
        self._queue = ""
        self._inflight = Inflight()
        #: the commands being handled (by id of their context: duplicates of one command
        #: may run at once), for cancel notices
        self._running: dict[int, HandlerContext] = {}
        self._cancelled = CancelledRuns()
        #: Since when this worker hears cancel notices (a command created before may belong
        #: to a run cancelled while no worker listened: it is always checked).
        self._listening_since = float("inf")
        self._stopped = False
        self._stopping = asyncio.Event()
        self._requeue_backoff = Backoff(0.1, 5.0)
        self.log = log.bind(service=service.name)
        # metrics (metrics_port) and traces (OTEL_EXPORTER_OTLP_ENDPOINT); nothing when off
        observability.setup(settings, "service")
        observability.instrument_worker(self)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Declare the queues and start consuming. A broker failure while starting (the
        connection dropped, a declare failed) is retried with exponential back-off, each
        attempt bounded by ``start_attempt_timeout_seconds``, until it succeeds, the worker
        is stopped, or ``start_attempts`` (0 = no limit) attempts failed: then
        :class:`~orch_serv.exceptions.TransportError` is raised."""
        longest = self.settings.start_backoff_max_seconds
        backoff = Backoff(min(0.1, longest), longest)
        attempt = 0
        while not self._stopped:
            attempt += 1
            try:
                async with asyncio.timeout(self.settings.start_attempt_timeout_seconds):
                    await self._start_consuming()
            except (TransportError, TimeoutError) as exc:
                await self._close_consumers()
                reason = (
                    str(exc) or f"no answer within {self.settings.start_attempt_timeout_seconds} s"
                )
                limit = self.settings.start_attempts
                if limit and attempt >= limit:
                    self.log.error("service_start_failed", attempts=attempt, error=reason)
                    raise TransportError(
                        f"service {self.service.name!r} could not start after {attempt} "
                        f"attempt(s): {reason}"
                    ) from exc
                delay = backoff.next()
                self.log.warning(
                    "service_start_retry", attempt=attempt, delay=round(delay, 3), error=reason
                )
                await pause(delay, self._stopping)
                continue
            if self._stopped:  # stop() ran while this attempt was under way
                await self._close_consumers()
                break
            self.log.info(
                "service_started",
                queue=self._queue,
                commands=self.service.commands,
                attempt=attempt,
            )
            return
        self.log.info("service_start_abandoned", attempts=attempt)

    async def _start_consuming(self) -> None:
        self._queue = await self.transport.declare_service(self.service.name)
        await self.transport.declare_orchestrator()  # replies must always be routable
        self._control = await self.transport.consume_control(self._on_control)
        self._listening_since = time.time()
        self._consumer = await self.transport.consume(
            self._queue,
            self._inflight.wrap(self._on_delivery),
            prefetch=self.settings.service_prefetch,
        )

    async def _close_consumers(self) -> None:
        for consumer in (self._consumer, self._control):
            if consumer is not None:
                with contextlib.suppress(TransportError, TimeoutError):
                    async with asyncio.timeout(self.settings.connect_timeout_seconds):
                        await consumer.close()
        self._consumer = self._control = None

    async def stop(self, grace: float | None = None) -> None:
        """Stop consuming, let in-flight handlers finish within ``grace`` seconds, and cancel
        the rest (their commands are not acked, so RabbitMQ redelivers them). Idempotent;
        also ends a :meth:`start` that is still retrying."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        if self._consumer is not None:
            await self._consumer.cancel()
        cancelled = await self._inflight.drain(grace)
        if cancelled:
            self.log.warning("service_drain_timeout", cancelled=cancelled)
        await self._close_consumers()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.log.info("service_stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- per message -------------------------------------------------------------------------
    async def _on_delivery(self, delivery: Delivery) -> None:
        try:
            command = decode(
                delivery.body, delivery.headers, max_bytes=self.settings.max_message_bytes
            )
        except MsgException as exc:
            self.log.warning(
                "command_dead_lettered", reason=exc.message, delivery=delivery.message_id
            )
            await self._dead_letter(delivery, exc.message)
            return
        # every log line of this delivery (handler's own structlog lines included) says which
        # run, step, attempt and command it is about
        with bound_context(
            service=self.service.name,
            run_id=command.run_id,
            step=command.step,
            attempt=command.attempt,
            command=command.command,
            message_id=command.message_id,
        ):
            try:
                await self._handle(command, delivery)
            except Unroutable as exc:
                # Nobody can ever receive the reply: answering again cannot succeed.
                reason = f"the reply cannot be routed, the command can never be answered: {exc}"
                self.log.error("command_unanswerable", reason=reason)
                await self._dead_letter(delivery, reason)
            except (TransportError, StoreError) as exc:
                # Broker or store trouble: give the command back after a short back-off
                # (or the broker redelivers it once the channel is gone).
                delay = self._requeue_backoff.next()
                self.log.warning("command_requeued", error=str(exc), delay=round(delay, 3))
                await pause(delay, self._stopping)
                with contextlib.suppress(TransportError):
                    await delivery.requeue()
            else:
                self._requeue_backoff.reset()

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Copy to the dead-letter queue with ``reason``; if even that fails, reject the
        delivery without requeue, so that the broker dead-letters it (no endless loop)."""
        try:
            await self.transport.dead_letter(delivery, reason, queue=self._queue)
        except TransportError:
            self.log.error("dead_letter_failed", reason=reason, exc_info=True)
            if not delivery.settled:
                with contextlib.suppress(TransportError):
                    await delivery.reject()

    async def _on_control(self, delivery: Delivery) -> None:
        """A cancel notice: stop the in-flight handlers it names."""
        with contextlib.suppress(TransportError):
            await delivery.ack()
        try:
            notice = decode(delivery.body)
        except MsgException:
            return
        if notice.kind is not MessageKind.CANCEL:
            return
        target = notice.body.get("message_id") if isinstance(notice.body, dict) else None
        if target is None:
            self._cancelled.add(notice.run_id)
        for ctx in list(self._running.values()):
            if ctx.run_id == notice.run_id and target in (None, ctx.message_id):
                ctx.cancel()

    async def _handle(self, command: Envelope[Any], delivery: Delivery) -> None:
        if command.kind is not MessageKind.COMMAND:
            reason = f"expected a command, got a {command.kind.value} message"
            self.log.warning("command_dead_lettered", reason=reason)
            await self._dead_letter(delivery, reason)
            return
        ctx = HandlerContext(
            command,
            service=self.service.name,
            publish=self._publish_to_orchestrator,
            loop=asyncio.get_running_loop(),
            logger=self.log,
            store=self.store,
            once_ttl=self.settings.once_ttl_seconds,
        )
        # registered before the currency check: a cancel notice that arrives while the run's
        # position is read is not missed
        self._running[id(ctx)] = ctx
        try:
            await self._execute(command, delivery, ctx)
        finally:
            self._running.pop(id(ctx), None)

    async def _execute(
        self, command: Envelope[Any], delivery: Delivery, ctx: HandlerContext
    ) -> None:
        if not await self._is_current(command, delivery, ctx):
            return
        spec = self.service.resolve(command.command)
        if spec is None:
            unknown = ErrorInfo(
                type="UnknownCommand",
                message=f"service {self.service.name!r} has no command {command.command!r}; "
                f"known: {self.service.commands}",
                retryable=False,
            )
            self.log.warning("command_unknown", known=self.service.commands)
            await self._reply(command, None, unknown, 0.0)
            await delivery.ack()
            return
        try:
            if command.notify_start:
                await ctx.heartbeat()  # starts the execution and heartbeat clocks
            started = time.perf_counter()
            result, extra, error = await invoke(spec, command, ctx, self._pool)
            duration_ms = (time.perf_counter() - started) * 1000
        finally:
            self._running.pop(id(ctx), None)
        await self._reply(command, result, error, duration_ms)
        await delivery.ack()
        if error is None and spec.post is not None:
            await post_process(spec, result, extra, ctx, self._pool)

    async def _is_current(
        self, command: Envelope[Any], delivery: Delivery, ctx: HandlerContext
    ) -> bool:
        """With a store: False (the command settled here) when the command's run is unknown
        (dead-lettered: the service may use another key prefix than the orchestrators) or
        no longer at the command's step and attempt (acked without running)."""
        if self.store is None:
            return True
        if not needs_check(
            command,
            redelivered=delivery.redelivered,
            after=self.settings.currency_check_after_seconds,
            now=time.time(),
            listening_since=self._listening_since,
        ):
            why = None
            if command.run_id in self._cancelled:
                why = "a cancel notice for its run arrived before it started"
            elif ctx.cancelled:
                why = "a cancel notice for it arrived before its handler started"
            if why is None:
                return True
            self.log.info("command_skipped", reason=why)
            await delivery.ack()
            return False
        position = await self.store.position(command.run_id)
        if position is None:
            reason = f"unknown run {command.run_id!r} (no such run in the store, or expired)"
            self.log.warning("command_dead_lettered", reason=reason)
            await self._dead_letter(delivery, reason)
            return False
        why = stale_reason(position, command)
        if why is None and ctx.cancelled:
            why = "a cancel notice for it arrived before its handler started"
        if why is None:
            return True
        self.log.info("command_skipped", reason=why, run_state=position.state.value)
        await delivery.ack()
        return False

    async def _reply(
        self, command: Envelope[Any], result: Any, error: ErrorInfo | None, duration_ms: float
    ) -> None:
        """Publish the reply and await its confirm (the command is acked only after this)."""
        reply, payload = build_reply(
            command,
            service=self.service.name,
            result=result,
            error=error,
            duration_ms=duration_ms,
            max_bytes=self.settings.max_message_bytes,
        )
        if reply.error is not None and error is None:
            self.log.warning("reply_replaced", error_type=reply.error.type)
        await self.transport.publish(
            command.reply_to or self.transport.topology.orchestrator_key,
            payload,
            message_id=reply.message_id,
            headers=headers_for(reply),
            kind=reply.kind.value,
        )

    async def _publish_to_orchestrator(self, message: Envelope[Any]) -> None:
        await self.transport.publish(
            message.reply_to or self.transport.topology.orchestrator_key,
            encode(message),
            message_id=message.message_id,
            headers=headers_for(message),
            kind=message.kind.value,
        )


__all__ = ["ServiceWorker", "error_info"]
