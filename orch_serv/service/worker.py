"""The service runtime: consumes a service's queue, runs handlers, replies, then acks.

Order per command (ARCHITECTURE section 7): decode -> validate the body -> run the handler
-> publish the reply and await its confirm -> ack the command -> run the post-processor.
A crash anywhere before the ack means RabbitMQ redelivers the command: handlers run at least
once per (run, step, attempt), and the deterministic message id lets them be idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Self

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from orch_serv.constants import MessageKind
from orch_serv.exceptions import HandlerError, MsgException, RetryAfter, TransportError
from orch_serv.inflight import Inflight
from orch_serv.logs import get_logger
from orch_serv.messages.codec import decode, encode, headers_for
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.service.context import HandlerContext
from orch_serv.service.definition import Service
from orch_serv.service.handler import HandlerSpec
from orch_serv.settings import Settings
from orch_serv.transport.base import Consumer, Delivery, Transport

log = get_logger("service")


def error_info(exc: BaseException, *, body: bool = True) -> ErrorInfo:
    """The structured error a reply carries for an exception raised by a handler (``body``:
    a ValidationError came from validating the step's body, not from the handler's code)."""
    if isinstance(exc, RetryAfter):
        return ErrorInfo(
            type=exc.type,
            message=exc.message,
            retryable=True,
            details={"retry_after": exc.delay},
        )
    if isinstance(exc, HandlerError):
        return ErrorInfo(type=exc.type, message=exc.message, retryable=exc.retryable)
    if isinstance(exc, ValidationError):
        details = exc.errors(include_url=False, include_input=False, include_context=False)
        what = "body failed validation" if body else f"{exc.title} failed validation"
        return ErrorInfo(
            type="ValidationError",
            message=f"{what}: {exc.error_count()} error(s)",
            retryable=False,
            details={"errors": details},
        )
    return ErrorInfo(type=type(exc).__name__, message=str(exc) or repr(exc), retryable=True)


class ServiceWorker:
    """Hosts the handlers of one :class:`Service` on a transport."""

    def __init__(self, service: Service, transport: Transport, settings: Settings) -> None:
        service.validate()
        self.service = service
        self.transport = transport
        self.settings = settings
        self._pool = ThreadPoolExecutor(
            max_workers=settings.handler_threads, thread_name_prefix=f"svc-{service.name}"
        )
        self._consumer: Consumer | None = None
        self._control: Consumer | None = None
        self._queue = ""
        self._inflight = Inflight()
        self._running: dict[str, HandlerContext] = {}
        self._stopped = False
        self.log = log.bind(service=service.name)

    async def start(self) -> None:
        """Declare the queues and start consuming."""
        self._queue = await self.transport.declare_service(self.service.name)
        await self.transport.declare_orchestrator()  # replies must always be routable
        self._control = await self.transport.consume_control(self._on_control)
        self._consumer = await self.transport.consume(
            self._queue,
            self._inflight.wrap(self._on_delivery),
            prefetch=self.settings.service_prefetch,
        )
        self.log.info("service_started", queue=self._queue, commands=self.service.commands)

    async def stop(self, grace: float | None = None) -> None:
        """Stop consuming, let in-flight handlers finish within ``grace`` seconds, and cancel
        the rest (their commands are not acked, so RabbitMQ redelivers them). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        if self._consumer is not None:
            await self._consumer.cancel()
        cancelled = await self._inflight.drain(grace)
        if cancelled:
            self.log.warning("service_drain_timeout", cancelled=cancelled)
        if self._consumer is not None:
            await self._consumer.close()
        if self._control is not None:
            await self._control.close()
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
            await self._handle(delivery)
        except TransportError:
            # Not acked: give it back (or the broker redelivers it once the channel is gone).
            self.log.warning("command_not_acked", exc_info=True)
            with contextlib.suppress(TransportError):
                await delivery.requeue()

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
        for message_id, ctx in list(self._running.items()):
            if ctx.run_id == notice.run_id and target in (None, message_id):
                ctx.cancel()

    async def _handle(self, delivery: Delivery) -> None:
        try:
            command = decode(
                delivery.body, dict(delivery.headers), max_bytes=self.settings.max_message_bytes
            )
        except MsgException as exc:
            self.log.warning("command_dead_lettered", reason=exc.message)
            await self.transport.dead_letter(delivery, exc.message, queue=self._queue)
            return
        if command.kind is not MessageKind.COMMAND:
            reason = f"expected a command, got a {command.kind.value} message"
            await self.transport.dead_letter(delivery, reason, queue=self._queue)
            return
        spec = self.service.resolve(command.command)
        if spec is None:
            unknown = ErrorInfo(
                type="UnknownCommand",
                message=f"service {self.service.name!r} has no command {command.command!r}; "
                f"known: {self.service.commands}",
                retryable=False,
            )
            await self._reply(command, None, unknown, 0.0)
            await delivery.ack()
            return
        ctx = HandlerContext(
            command,
            service=self.service.name,
            publish=self._publish_to_orchestrator,
            loop=asyncio.get_running_loop(),
            logger=self.log,
        )
        self._running[command.message_id] = ctx
        try:
            if command.notify_start:
                await ctx.heartbeat()  # starts the execution and heartbeat clocks
            started = time.perf_counter()
            result, extra, error = await self._invoke(spec, command, ctx)
            duration_ms = (time.perf_counter() - started) * 1000
        finally:
            self._running.pop(command.message_id, None)
        await self._reply(command, result, error, duration_ms)
        await delivery.ack()
        if error is None and spec.post is not None:
            await self._post_process(spec, result, extra, ctx)

    async def _invoke(
        self, spec: HandlerSpec, command: Envelope[Any], ctx: HandlerContext
    ) -> tuple[Any, Any, ErrorInfo | None]:
        try:
            body = spec.parse(command.body)
        except ValidationError as exc:
            return None, None, error_info(exc)
        try:
            args = (body, ctx) if spec.takes_context else (body,)
            if spec.is_async:
                work = asyncio.ensure_future(spec.fn(*args))
                ctx.attach(work)
                output = await work
            else:
                loop = asyncio.get_running_loop()
                output = await loop.run_in_executor(self._pool, partial(spec.fn, *args))
            if ctx.cancelled:
                raise asyncio.CancelledError
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not ctx.cancelled or (current is not None and current.cancelling()):
                raise  # the worker itself is stopping: the command goes back to the queue
            ctx.log.info("handler_cancelled", command=spec.command)
            error = ErrorInfo(type="Cancelled", message="the run was cancelled", retryable=False)
            return None, None, error
        except Exception as exc:
            ctx.log.info("handler_failed", command=spec.command, error=repr(exc))
            return None, None, error_info(exc, body=False)
        extra = None
        if type(output) is tuple and len(output) == 2:
            output, extra = output
        if output is None:
            output = command.body
        elif isinstance(output, BaseModel):
            output = output.model_dump(mode="json")
        return output, extra, None

    async def _post_process(
        self, spec: HandlerSpec, result: Any, extra: Any, ctx: HandlerContext
    ) -> None:
        assert spec.post is not None
        try:
            if spec.post_is_async:
                await spec.post(result, extra, ctx)
            else:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._pool, partial(spec.post, result, extra, ctx))
        except Exception:
            ctx.log.warning("post_process_failed", command=spec.command, exc_info=True)

    async def _reply(
        self, command: Envelope[Any], result: Any, error: ErrorInfo | None, duration_ms: float
    ) -> None:
        """Publish the reply and await its confirm (the command is acked only after this)."""
        reply = command.answer(
            MessageKind.REPLY,
            ":reply",
            service=self.service.name,
            source=command.step_name,
            body=result,
            error=error,
            duration_ms=round(duration_ms, 3),
        )
        try:
            payload = encode(reply)
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            reply.body = None
            reply.error = ErrorInfo(
                type="ResultNotSerializable",
                message=f"handler result is not JSON-serialisable: {exc}",
                retryable=False,
            )
            payload = encode(reply)
        limit = self.settings.max_message_bytes
        if len(payload) > limit:
            reply.body = None
            reply.error = ErrorInfo(
                type="ResultTooLarge",
                message=f"the reply of {len(payload)} bytes exceeds the limit of {limit}",
                retryable=False,
            )
            payload = encode(reply)
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
