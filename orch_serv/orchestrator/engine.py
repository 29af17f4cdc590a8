"""The orchestrator engine: consumes starts, replies and status events, advances runs.

Per reply: decode -> (post hook, pre hook of the next step) -> ONE Lua transition in Redis ->
publish the next command (confirmed) -> ack. A reply that fails the transition's check is
recorded as ``reply_ignored`` and never advances the run. If a process dies after the
transition but before the publish, RabbitMQ redelivers the reply; the store then answers
ALREADY_APPLIED (the run's last transition was caused by this very message) and the engine
publishes the command again: no step is lost, none is advanced twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from orch_serv.constants import EventKind, EventStatus, MessageKind, RunState
from orch_serv.exceptions import (
    FlowNotFound,
    MsgException,
    StoreError,
    TransportError,
)
from orch_serv.flow.flow import CompiledStep
from orch_serv.flow.registry import Definition, FlowRegistry
from orch_serv.inflight import Inflight
from orch_serv.logs import get_logger
from orch_serv.messages.codec import decode, encode, headers_for
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.orchestrator.steps import build_command, call_hook
from orch_serv.settings import Settings
from orch_serv.store.base import Event, Outcome, Position, RunStore, Transition
from orch_serv.transport.base import Consumer, Delivery, Transport

log = get_logger("orchestrator")

Clock = Callable[[], float]


class Engine:
    """One orchestrator replica. Stateless: any replica can advance any run."""

    def __init__(
        self,
        registry: FlowRegistry,
        transport: Transport,
        store: RunStore,
        settings: Settings,
        *,
        clock: Clock = time.time,
    ) -> None:
        self.registry = registry
        self.transport = transport
        self.store = store
        self.settings = settings
        self.clock = clock
        self._queue = ""
        self._consumer: Consumer | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self._remote: dict[tuple[str, str, str], Definition] = {}
        self._inflight = Inflight()

    async def start(self) -> None:
        """Publish the definitions, declare the queues and start consuming."""
        await self.store.register_specs(
            self.registry.specs(),
            default_flow=self.registry.default_flow,
            default_block=self.registry.default_block,
        )
        for spec in self.registry.specs():
            for step in spec.steps:
                await self.transport.declare_service(step.service)
        self._queue = await self.transport.declare_orchestrator()
        self._consumer = await self.transport.consume(
            self._queue,
            self._inflight.wrap(self._on_delivery),
            prefetch=self.settings.orchestrator_prefetch,
        )
        self._housekeeper = asyncio.create_task(self._housekeeping())
        log.info("orchestrator_started", queue=self._queue, flows=self.registry.get_list_flows())

    async def stop(self) -> None:
        """Stop consuming, finish the messages in hand (within the shutdown grace), and give
        the rest back to the queue; idempotent."""
        if self._consumer is not None:
            await self._consumer.cancel()
            await self._inflight.drain(self.settings.shutdown_grace_seconds)
            await self._consumer.close()
            self._consumer = None
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            self._housekeeper = None

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval_seconds)
            try:
                removed = await self.store.housekeeping(self.clock())
                log.debug("housekeeping", removed=removed)
            except StoreError:
                log.warning("housekeeping_failed", exc_info=True)

    # -- dispatch ----------------------------------------------------------------------------
    async def _on_delivery(self, delivery: Delivery) -> None:
        try:
            message = decode(
                delivery.body, dict(delivery.headers), max_bytes=self.settings.max_message_bytes
            )
        except MsgException as exc:
            log.warning("message_dead_lettered", reason=exc.message)
            await self._dead_letter(delivery, exc.message)
            return
        try:
            if message.kind is MessageKind.REPLY:
                await self._on_reply(message, delivery)
            elif message.kind is MessageKind.START:
                await self._on_start(message, delivery)
            elif message.kind is MessageKind.STATUS:
                await self._on_status(message, delivery)
            else:
                reason = f"the orchestrator does not take {message.kind.value} messages"
                await self._dead_letter(delivery, reason)
        except FlowNotFound as exc:
            await self._dead_letter(delivery, exc.message)
        except (StoreError, TransportError) as exc:
            # Infrastructure trouble: give the message back and slow down a little.
            log.warning("message_requeued", run_id=message.run_id, error=str(exc))
            await asyncio.sleep(0.5)
            try:
                await delivery.requeue()
            except TransportError:
                pass  # the channel is gone; the broker redelivers anyway

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        try:
            await self.transport.dead_letter(delivery, reason, queue=self._queue)
        except TransportError:
            log.warning("dead_letter_failed", reason=reason, exc_info=True)

    async def _definition(self, message: Envelope[Any]) -> Definition:
        kind, name = ("block", message.target) if message.target else ("flow", message.flow)
        version = message.flow_version or ""
        if name is None:
            raise FlowNotFound("message names neither a flow nor a target")
        found = self.registry.version(kind, name, version) or self._remote.get(
            (kind, name, version)
        )
        if found is not None:
            return found
        spec = await self.store.get_spec(kind, name, version)
        if spec is None:
            raise FlowNotFound(f"unknown {kind} {name!r} version {version!r}")
        if any(s.pre_hook or s.post_hook for s in spec.steps):
            raise FlowNotFound(
                f"{kind} {name!r} version {version!r} has hooks this orchestrator does not have"
            )
        steps = tuple(CompiledStep(s, None, None) for s in spec.steps)
        self._remote[(kind, name, version)] = found = Definition(spec, steps)
        return found

    # -- start -------------------------------------------------------------------------------
    async def _on_start(self, message: Envelope[Any], delivery: Delivery) -> None:
        definition = await self._definition(message)
        first = definition.steps[0]
        now = self.clock()
        expect = Position(RunState.PENDING, 0, 0)
        started = Event(kind=EventKind.RUN_STARTED, time=now, component="orchestrator")
        try:
            command = await call_hook(first.pre, self._command(definition, first, message, 1, None))
        except Exception as exc:
            await self._fail(message, expect, [started], _hook_error(exc, first), now)
            await delivery.ack()
            return
        if command is None:
            events = [started, self._stopped(first, now), self._finished(now, ok=True)]
            change = Transition(
                run_id=message.run_id,
                expect=expect,
                new=Position(RunState.SUCCEEDED, 0, 1),
                cause=message.message_id,
                now=now,
                events=events,
                fields={"result": message.body},
            )
            await self.store.transition(change)
            await delivery.ack()
            return
        change = Transition(
            run_id=message.run_id,
            expect=expect,
            new=Position(RunState.RUNNING, 0, 1),
            cause=message.message_id,
            now=now,
            step_name=first.spec.name,
            fields={"step_input": command.body},
            events=[started, self._dispatched(command, now)],
        )
        await self._apply(change, command, delivery)

    # -- replies -----------------------------------------------------------------------------
    async def _on_reply(self, reply: Envelope[Any], delivery: Delivery) -> None:
        definition = await self._definition(reply)
        index = reply.step
        if index >= len(definition.steps):
            await self._dead_letter(delivery, f"step {index} is past the end of {reply.flow!r}")
            return
        step = definition.steps[index]
        now = self.clock()
        expect = Position(RunState.RUNNING, index, reply.attempt)
        if reply.error is not None:
            failed = self._step_event(EventKind.STEP_FAILED, reply, now)
            await self._fail(reply, expect, [failed], reply.error, now, delivery=delivery)
            await delivery.ack()
            return
        completed = self._step_event(EventKind.STEP_COMPLETED, reply, now)
        following = definition.steps[index + 1] if index + 1 < len(definition.steps) else None
        try:
            forwarded = await call_hook(step.post, reply) or reply
            command = None
            if following is not None:
                draft = self._command(definition, following, forwarded, 1, step.spec.name)
                command = await call_hook(following.pre, draft)
        except Exception as exc:
            error = _hook_error(exc, step if following is None else following)
            await self._fail(reply, expect, [completed], error, now, delivery=delivery)
            await delivery.ack()
            return
        if command is None:
            events = [completed]
            if following is not None:
                events.append(self._stopped(following, now))
            events.append(self._finished(now, ok=True))
            change = Transition(
                run_id=reply.run_id,
                expect=expect,
                new=Position(RunState.SUCCEEDED, index, reply.attempt),
                cause=reply.message_id,
                now=now,
                events=events,
                fields={"result": forwarded.body},
                ignored=self._ignored(reply, now),
            )
            await self._apply(change, None, delivery)
            return
        change = Transition(
            run_id=reply.run_id,
            expect=expect,
            new=Position(RunState.RUNNING, index + 1, 1),
            cause=reply.message_id,
            now=now,
            step_name=command.step_name,
            fields={"step_input": command.body},
            events=[completed, self._dispatched(command, now)],
            ignored=self._ignored(reply, now),
        )
        await self._apply(change, command, delivery)

    async def _fail(
        self,
        message: Envelope[Any],
        expect: Position,
        events: list[Event],
        error: ErrorInfo,
        now: float,
        *,
        delivery: Delivery | None = None,
    ) -> None:
        change = Transition(
            run_id=message.run_id,
            expect=expect,
            new=Position(RunState.FAILED, expect.step, max(expect.attempt, 1)),
            cause=message.message_id,
            now=now,
            events=[*events, self._finished(now, ok=False, error=error)],
            fields={"error": error.model_dump(exclude_none=True)},
            ignored=self._ignored(message, now) if message.kind is MessageKind.REPLY else None,
        )
        result = await self.store.transition(change)
        if result.outcome is Outcome.NOT_FOUND and delivery is not None:
            await self._dead_letter(delivery, f"unknown run {message.run_id!r}")

    async def _apply(
        self, change: Transition, command: Envelope[Any] | None, delivery: Delivery
    ) -> None:
        result = await self.store.transition(change)
        if result.outcome is Outcome.NOT_FOUND:
            await self._dead_letter(delivery, f"unknown run {change.run_id!r}")
            return
        republish = result.outcome is Outcome.ALREADY_APPLIED and delivery.redelivered
        if command is not None and (result.outcome is Outcome.APPLIED or republish):
            await self._publish(command)
        if result.outcome is Outcome.STALE or (
            result.outcome is Outcome.ALREADY_APPLIED and not republish
        ):
            log.debug("reply_ignored", run_id=change.run_id, reason=result.reason)
        await delivery.ack()

    async def _publish(self, command: Envelope[Any]) -> None:
        assert command.service is not None
        await self.transport.publish(
            self.transport.topology.service_key(command.service),
            encode(command),
            message_id=command.message_id,
            headers=headers_for(command),
            kind=command.kind.value,
        )

    # -- status events -----------------------------------------------------------------------
    async def _on_status(self, message: Envelope[Any], delivery: Delivery) -> None:
        info = message.status
        if info is None:
            await self._dead_letter(delivery, "status message without a `status` field")
            return
        event = Event(
            kind=EventKind.STATUS,
            time=message.created_at,
            step=message.step,
            step_name=message.step_name,
            attempt=message.attempt,
            status=info.status,
            component=message.service,
            body=info.lineage,
            message_id=message.message_id,
            name=info.name,
            message=info.message,
        )
        state = await self.store.record_event(message.run_id, event, info.name)
        if state is None:
            await self._dead_letter(delivery, f"unknown run {message.run_id!r}")
            return
        await delivery.ack()

    # -- message and event builders ----------------------------------------------------------
    def _command(
        self,
        definition: Definition,
        step: CompiledStep,
        previous: Envelope[Any],
        attempt: int,
        source: str | None,
    ) -> Envelope[Any]:
        return build_command(
            definition.spec,
            step,
            run_id=previous.run_id,
            attempt=attempt,
            body=previous.body,
            source=source,
            reply_to=self.transport.topology.orchestrator_key,
            traceparent=previous.traceparent,
        )

    @staticmethod
    def _dispatched(command: Envelope[Any], now: float) -> Event:
        return Event(
            kind=EventKind.STEP_DISPATCHED,
            time=now,
            step=command.step,
            step_name=command.step_name,
            attempt=command.attempt,
            component=command.service,
            message_id=command.message_id,
        )

    @staticmethod
    def _step_event(kind: EventKind, reply: Envelope[Any], now: float) -> Event:
        return Event(
            kind=kind,
            time=now,
            step=reply.step,
            step_name=reply.step_name,
            attempt=reply.attempt,
            status=EventStatus.FAILED if reply.error else EventStatus.OK,
            component=reply.service,
            duration_ms=reply.duration_ms,
            error=reply.error,
            message_id=reply.message_id,
        )

    @staticmethod
    def _ignored(reply: Envelope[Any], now: float) -> Event:
        return Event(
            kind=EventKind.REPLY_IGNORED,
            time=now,
            step=reply.step,
            step_name=reply.step_name,
            attempt=reply.attempt,
            status=EventStatus.FAILED if reply.error else EventStatus.OK,
            component=reply.service,
            message_id=reply.message_id,
        )

    @staticmethod
    def _stopped(step: CompiledStep, now: float) -> Event:
        return Event(
            kind=EventKind.RUN_STOPPED,
            time=now,
            step=step.spec.index,
            step_name=step.spec.name,
            component="orchestrator",
            reason="pre hook returned None",
        )

    @staticmethod
    def _finished(now: float, *, ok: bool, error: ErrorInfo | None = None) -> Event:
        return Event(
            kind=EventKind.RUN_SUCCEEDED if ok else EventKind.RUN_FAILED,
            time=now,
            status=EventStatus.OK if ok else EventStatus.FAILED,
            component="orchestrator",
            error=error,
        )


def _hook_error(exc: Exception, step: CompiledStep) -> ErrorInfo:
    return ErrorInfo(
        type="HookError",
        message=f"a hook around step {step.spec.name!r} raised {type(exc).__name__}: {exc}",
        retryable=False,
    )
