"""The engine shell: consumes starts, replies, heartbeats and status events, fires timers,
and carries out what the decision core (:mod:`orch_serv.orchestrator.core`) decides.

Per message, in this order: decode -> find the definition (and, for a resume or a timer,
read the run) -> run the user's hooks -> ask the core -> commit the ONE Lua transition ->
publish the command (confirmed) -> ack. A reply that fails the transition's check is
recorded (``reply_ignored`` for a duplicate, ``late_result`` for a reply whose attempt, step
or run has moved on) and never advances the run. If a process dies after the transition but
before the publish, RabbitMQ redelivers the reply (or the timer's lease runs out); the store
then answers ALREADY_APPLIED (the run's last transition was caused by this very message or
timer) and the engine publishes the command again: no step is lost, none advanced twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from orch_serv import observability
from orch_serv.constants import Lane, MessageKind
from orch_serv.exceptions import FlowNotFound, MsgException, StoreError, TransportError
from orch_serv.flow.groups import BRANCH_MARK, GROUPS_SERVICE
from orch_serv.flow.registry import Definition, FlowRegistry
from orch_serv.flow.waits import WAITS_SERVICE
from orch_serv.inflight import Inflight
from orch_serv.logs import bound_context, get_logger
from orch_serv.messages.codec import decode, encode, headers_for
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator import direct_start
from orch_serv.orchestrator.cancel import send_notice
from orch_serv.orchestrator.core import (
    Advance,
    Clocks,
    Commit,
    Decision,
    Hooked,
    Ignore,
    NeedRun,
    Planner,
    RecordBeat,
    RecordStatus,
    Reject,
    ReplyHooks,
    Send,
)
from orch_serv.orchestrator.definitions import Definitions
from orch_serv.orchestrator.groups import Groups
from orch_serv.orchestrator.housekeeping import Housekeeper
from orch_serv.orchestrator.journal import log_outcome
from orch_serv.orchestrator.presence import Presence, app_names
from orch_serv.orchestrator.shards import shard_leases
from orch_serv.orchestrator.status_models import record_status
from orch_serv.orchestrator.steps import call_hook
from orch_serv.orchestrator.timer_kinds import fire_timer
from orch_serv.orchestrator.timers import TimerLoop
from orch_serv.orchestrator.waits import Waits
from orch_serv.settings import Settings
from orch_serv.statusmodel.model import StatusModel
from orch_serv.store.base import Outcome, RunStore
from orch_serv.store.shape import BeatOutcome
from orch_serv.store.timers import TimerId
from orch_serv.transport.base import Consumer, Delivery, Transport

log = get_logger("orchestrator")

Clock = Callable[[], float]
#: What a handler decided about its delivery: None = ack, a string = dead-letter reason.
Disposition = str | None


async def run_hook(hook: Any, message: Envelope[Any]) -> Hooked:
    """What a user's hook made of ``message`` (its exception is kept, not raised)."""
    try:
        return Hooked(await call_hook(hook, message))
    except Exception as exc:  # user code: whatever it raises fails the run, with the reason
        return Hooked(None, exc)


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
        status_models: Sequence[StatusModel] = (),
    ) -> None:
        self.registry = registry
        #: Status models this replica publishes; statuses of runs whose flow names a model
        #: are held to its rules (``store/statuses.py``).
        self.status_models = tuple(status_models)
        from orch_serv.store.statuses import status_store_of  # loads redis: not at import

        self.statuses = status_store_of(store)
        self.transport = transport
        self.store = store
        self.settings = settings
        self.clock = clock
        self.planner = Planner(settings.default_timeouts, transport.topology.orchestrator_key)
        self.advance = Advance(self.planner)
        self.clocks = Clocks(self.planner)
        self.definitions = Definitions(registry, store)
        self.presence = Presence(
            store.replicas(transport.topology.namespace),
            app_names(registry.get_list_flows(), registry.get_list_blocks()),
            namespace=transport.topology.namespace,
            clock=clock,
            interval=settings.presence_interval_seconds,
        )
        self.timers = TimerLoop(
            store,
            self.on_timer,
            clock=clock,
            lease=settings.timer_lease_seconds,
            poll=settings.timer_poll_seconds,
            batch=settings.timer_batch,
            shards=shard_leases(store, self.presence, settings.shard_lease_seconds),
        )
        self.waits = Waits(
            store, self.definitions, self._publish, clock=clock, poke=self.timers.poke
        )
        self.groups = Groups(
            store,
            self.definitions,
            self._publish,
            transport,
            clock=clock,
            poke=self.timers.poke,
        )
        self.housekeeper = Housekeeper(self)
        self._queue = ""
        self._consumer: Consumer | None = None
        self._inflight = Inflight()
        # metrics (metrics_port) and traces (OTEL_EXPORTER_OTLP_ENDPOINT); nothing when off
        observability.setup(settings, "orchestrator")
        observability.instrument_engine(self)

    async def start(self) -> None:
        """Check that no other application serves the namespace (raises
        :class:`~orch_serv.exceptions.NamespaceConflict`), publish the definitions, declare
        the queues, start consuming and the timers."""
        await self.presence.check_and_announce()
        try:
            await self._start()
        except BaseException:
            await self.presence.stop()
            raise

    async def _start(self) -> None:
        self.presence.start()
        for spec in self.registry.specs():
            for step in spec.steps:
                if not step.kept:  # a wait or a group has no service queue
                    await self.transport.declare_service(step.service)
        self._queue = await self.transport.declare_orchestrator()
        if self.status_models and self.statuses is not None:
            await self.statuses.models.publish(self.status_models)
        await direct_start.publish(
            self.store,
            self.settings,
            self.planner.reply_to,
            observed=direct_start.observed(),
        )
        # Published last: a client that sees a definition can always publish its start.
        await self.store.register_specs(
            self.registry.specs(),
            default_flow=self.registry.default_flow,
            default_block=self.registry.default_block,
        )
        self._consumer = await self.transport.consume(
            self._queue,
            self._inflight.wrap(self._on_delivery),
            prefetch=self.settings.orchestrator_prefetch,
        )
        self.timers.start()
        self.housekeeper.start()
        log.info("orchestrator_started", queue=self._queue, flows=self.registry.get_list_flows())

    async def stop(self) -> None:
        """Stop consuming and firing timers, finish the messages in hand (within the shutdown
        grace), and give the rest back to the queue; idempotent."""
        if self._consumer is not None:
            await self._consumer.cancel()
            await self._inflight.drain(self.settings.shutdown_grace_seconds)
            await self._consumer.close()
            self._consumer = None
        await self.timers.stop()
        await self.presence.stop()
        await self.housekeeper.stop()

    async def recover_stranded(self) -> int:
        """Send the START or RESUME of runs whose client died before sending it (see
        :class:`~orch_serv.orchestrator.housekeeping.Housekeeper`)."""
        return await self.housekeeper.recover_stranded()

    # -- deliveries --------------------------------------------------------------------------
    async def _on_delivery(self, delivery: Delivery) -> None:
        try:
            message = decode(
                delivery.body, delivery.headers, max_bytes=self.settings.max_message_bytes
            )
        except MsgException as exc:
            await self._dead_letter(delivery, exc.message)
            return
        with bound_context(run_id=message.run_id, step=message.step, attempt=message.attempt):
            try:
                verdict = await self._route(message, delivery.redelivered)
            except FlowNotFound as exc:
                verdict = exc.message
            except (StoreError, TransportError) as exc:
                # Infrastructure trouble: give the message back and slow down a little.
                log.warning("message_requeued", error=str(exc))
                await asyncio.sleep(0.5)
                with contextlib.suppress(TransportError):
                    await delivery.requeue()
                return
            except Exception as exc:  # a bug or a value nothing checked: never hold the message
                log.exception("message_failed")
                verdict = f"internal error: {type(exc).__name__}: {exc}"
            if verdict is None:
                await delivery.ack()
            else:
                await self._dead_letter(delivery, verdict)

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        log.warning("message_dead_lettered", reason=reason, queue=self._queue)
        try:
            await self.transport.dead_letter(delivery, reason, queue=self._queue)
        except TransportError:
            log.warning("dead_letter_failed", reason=reason, exc_info=True)

    async def _route(self, message: Envelope[Any], redelivered: bool) -> Disposition:
        kind = message.kind
        if kind is MessageKind.REPLY:
            return await self._on_reply(message, redelivered)
        if kind is MessageKind.HEARTBEAT:
            definition = await self.definitions.of(message)
            return await self.apply(
                self.clocks.on_heartbeat(definition.spec, message, self.clock())
            )
        if kind is MessageKind.STATUS:
            return await self._on_status(message)
        if kind is MessageKind.START:
            return await self._on_start(message, redelivered)
        if kind is MessageKind.RESUME:
            return await self._on_resume(message, redelivered)
        return f"the orchestrator does not take {kind.value} messages"

    async def _on_status(self, message: Envelope[Any]) -> Disposition:
        """Record a status event, held to the run's status model if it has one."""
        return await record_status(self, message)

    async def _on_start(self, message: Envelope[Any], redelivered: bool) -> Disposition:
        definition = await self.definitions.of(message)
        spec, now = definition.spec, self.clock()
        planned = self.advance.start_dispatch(spec, message, now)
        pre = await run_hook(definition.steps[0].pre, planned.command)
        decision = self.advance.on_start(
            spec, message, now, redelivered=redelivered, planned=planned, pre=pre
        )
        return await self.apply(decision)

    async def _on_resume(self, message: Envelope[Any], redelivered: bool) -> Disposition:
        record = await self.store.get_run(message.run_id)
        if record is None:
            return f"unknown run {message.run_id!r}"
        definition = await self.definitions.get(record.kind, record.flow, record.version)
        spec, now = definition.spec, self.clock()
        planned = self.advance.resume_dispatch(spec, record, message, now)
        if isinstance(planned, Reject):
            return planned.reason
        pre = None
        if self.advance.resume_runs_pre_hook(record, message):
            pre = await run_hook(definition.steps[message.step].pre, planned.command)
        decision = self.advance.on_resume(
            spec, record, message, now, redelivered=redelivered, planned=planned, pre=pre
        )
        return await self.apply(decision)

    async def _on_reply(self, reply: Envelope[Any], redelivered: bool) -> Disposition:
        definition = await self.definitions.of(reply)
        now = self.clock()
        hooks = await self._reply_hooks(definition, reply, now)
        decide = self.advance.on_reply
        decision = decide(definition.spec, reply, now, redelivered=redelivered, hooks=hooks)
        if isinstance(decision, NeedRun):
            record = await self.store.get_run(reply.run_id)
            outputs = dict(record.outputs) if record is not None else {}
            decision = decide(
                definition.spec, reply, now, redelivered=redelivered, hooks=hooks, outputs=outputs
            )
        return await self.apply(decision)

    async def _reply_hooks(
        self, definition: Definition, reply: Envelope[Any], now: float
    ) -> ReplyHooks | None:
        """Run the post hook of the replying step and the pre hook of the next one (None when
        neither exists, or the reply is not a success to move on from)."""
        index = reply.step
        if reply.error is not None or reply.lane is not Lane.RUN:
            return None
        if not 0 <= index < len(definition.steps):
            return None
        post_hook = definition.steps[index].post
        pre_hook = definition.steps[index + 1].pre if index + 1 < len(definition.steps) else None
        if post_hook is None and pre_hook is None:
            return None
        post = await run_hook(post_hook, reply)
        if post.error is not None:
            return ReplyHooks(post)
        planned = self.advance.next_dispatch(definition.spec, reply, post.message or reply, now)
        if planned is None:
            return ReplyHooks(post)
        return ReplyHooks(post, planned, await run_hook(pre_hook, planned.command))

    # -- timers ------------------------------------------------------------------------------
    async def on_timer(self, timer: TimerId) -> None:
        """Handle one due timer (called by the timer loop, under a lease)."""
        await fire_timer(self, timer)

    # -- carrying out decisions --------------------------------------------------------------
    async def apply(self, decision: Decision) -> Disposition:
        """Carry out a decision of the core: commit, then publish and notify; returns what
        to do with the message that led to it (None: ack; a reason: dead-letter)."""
        if isinstance(decision, Commit):
            return await self._commit(decision)
        if isinstance(decision, RecordBeat):
            outcome = await self.store.heartbeat(decision.beat)
            if outcome == BeatOutcome.NOT_FOUND:
                return f"unknown run {decision.beat.run_id!r}"
            if decision.dues:
                self.timers.poke(min(decision.dues), decision.beat.run_id)
            return None
        if isinstance(decision, RecordStatus):
            state = await self.store.record_event(decision.run_id, decision.event, decision.status)
            return None if state is not None else f"unknown run {decision.run_id!r}"
        if isinstance(decision, Send):
            await self._publish(decision.message)
            return None
        if isinstance(decision, Reject):
            return decision.reason
        if isinstance(decision, Ignore):
            log.debug("ignored", why=decision.why)
            return None
        raise TypeError(f"the engine cannot carry out {decision!r}")  # NeedRun: a bug

    async def _commit(self, decision: Commit) -> Disposition:
        """Apply the transition; publish the command if it applied (or if it had applied
        before and this is a redelivery, whose first handling may have died before the
        publish)."""
        change = decision.change
        result = await self.store.transition(change)
        if result.outcome is Outcome.NOT_FOUND:
            return f"unknown run {change.run_id!r}"
        applied = result.outcome is Outcome.APPLIED
        if decision.command is not None and (
            applied or (result.outcome is Outcome.ALREADY_APPLIED and decision.republish)
        ):
            await self._publish(decision.command)
        if not applied:
            log.debug("transition_skipped", run_id=change.run_id, reason=result.reason)
            return None
        if change.timers_add:
            self.timers.poke(min(due for _, due in change.timers_add), change.run_id)
        elif change.new.state.terminal and BRANCH_MARK in change.run_id:
            # a group member ended: its group's check (in the parent's shard) is due
            self.timers.poke(change.now, change.run_id)
        log_outcome(change)
        if decision.cancel is not None:
            await send_notice(self.transport, decision.cancel)
        return None

    async def _publish(self, message: Envelope[Any]) -> None:
        """A command goes to its service's queue; a START or RESUME to the orchestrators."""
        topology = self.transport.topology
        if message.kind is MessageKind.COMMAND:
            assert message.service is not None
            if message.service in (WAITS_SERVICE, GROUPS_SERVICE):
                return  # a wait or a group sends no command: its timer (set at dispatch) checks it
            routing_key = topology.service_key(message.service)
        else:
            routing_key = topology.orchestrator_key
        await self.transport.publish(
            routing_key,
            encode(message),
            message_id=message.message_id,
            headers=headers_for(message),
            kind=message.kind.value,
        )


__all__ = ["Clock", "Disposition", "Engine", "run_hook"]
