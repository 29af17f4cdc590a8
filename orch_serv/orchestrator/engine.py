"""The orchestrator engine: consumes starts, replies, heartbeats and status events, fires
timers, and advances runs.

Per reply: decode -> (post hook, pre hook of the next step) -> ONE Lua transition in Redis ->
publish the next command (confirmed) -> ack. A reply that fails the transition's check is
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
from collections.abc import Callable
from typing import Any

from orch_serv.constants import EventKind, Lane, MessageKind, Phase, RunState, TimerKind
from orch_serv.exceptions import FlowNotFound, MsgException, StoreError, TransportError
from orch_serv.flow.flow import CompiledStep
from orch_serv.flow.registry import Definition, FlowRegistry
from orch_serv.flow.spec import StepSpec
from orch_serv.inflight import Inflight
from orch_serv.logs import get_logger
from orch_serv.messages.codec import decode, encode, headers_for
from orch_serv.messages.envelope import Envelope, ErrorInfo, command_message_id
from orch_serv.orchestrator.plan import (
    FINISH_EVENT,
    GiveUp,
    Planner,
    lane_state,
    resume_message,
    run_event,
    start_message,
    step_event,
    timeout_error,
)
from orch_serv.orchestrator.steps import call_hook
from orch_serv.orchestrator.timers import TimerLoop
from orch_serv.settings import Settings
from orch_serv.store.base import Beat, Event, Outcome, Position, RunStore, Transition
from orch_serv.store.timers import TimerId
from orch_serv.transport.base import Consumer, Delivery, Transport

log = get_logger("orchestrator")

Clock = Callable[[], float]
#: What a handler decided about its delivery: None = ack, a string = dead-letter reason.
Disposition = str | None


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
        self.planner = Planner(settings.default_timeouts, transport.topology.orchestrator_key)
        self.timers = TimerLoop(
            store,
            self.on_timer,
            clock=clock,
            lease=settings.timer_lease_seconds,
            poll=settings.timer_poll_seconds,
            batch=settings.timer_batch,
        )
        self._queue = ""
        self._consumer: Consumer | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self._remote: dict[tuple[str, str, str], Definition] = {}
        self._inflight = Inflight()

    async def start(self) -> None:
        """Publish the definitions, declare the queues, start consuming and the timers."""
        for spec in self.registry.specs():
            for step in spec.steps:
                await self.transport.declare_service(step.service)
        self._queue = await self.transport.declare_orchestrator()
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
        self._housekeeper = asyncio.create_task(self._housekeeping())
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
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
            self._housekeeper = None

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval_seconds)
            try:
                removed = await self.store.housekeeping(self.clock())
                recovered = await self.recover_stranded()
                log.debug("housekeeping", removed=removed, recovered=recovered)
            except (StoreError, TransportError):
                log.warning("housekeeping_failed", exc_info=True)

    async def recover_stranded(self) -> int:
        """Send the START or RESUME of runs whose client died before sending it. Safe to
        repeat and to race with the client: the transition it leads to applies once."""
        horizon = self.clock() - self.settings.stranded_after_seconds
        stranded = await self.store.stranded(horizon)
        for record in stranded:
            try:
                await self._definition(record.kind, record.flow, record.version)
            except FlowNotFound as exc:  # nobody can run it: end it rather than resend forever
                expect = Position(record.state, record.step, record.attempt, record.phase)
                error = ErrorInfo(type="FlowNotFound", message=exc.message, retryable=False)
                await self._finish(
                    record.run_id,
                    expect,
                    RunState.FAILED,
                    self.clock(),
                    f"{record.run_id}:lost",
                    events=[],
                    error=error,
                )
                continue
            if record.state is RunState.PENDING:
                message = start_message(
                    record.run_id, record.kind, record.flow, record.version, record.input
                )
            else:
                lane = Lane.COMPENSATE if record.state is RunState.COMPENSATING else Lane.RUN
                message = resume_message(
                    record.run_id,
                    record.kind,
                    record.flow,
                    record.version,
                    step=record.step,
                    attempt=record.attempt,
                    lane=lane,
                )
            await self.transport.publish(
                self.transport.topology.orchestrator_key,
                encode(message),
                message_id=message.message_id,
                headers=headers_for(message),
                kind=message.kind.value,
            )
            log.info("stranded_run_recovered", run_id=record.run_id, kind=message.kind.value)
        return len(stranded)

    # -- deliveries --------------------------------------------------------------------------
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
            verdict = await self._route(message, delivery.redelivered)
        except FlowNotFound as exc:
            verdict = exc.message
        except (StoreError, TransportError) as exc:
            # Infrastructure trouble: give the message back and slow down a little.
            log.warning("message_requeued", run_id=message.run_id, error=str(exc))
            await asyncio.sleep(0.5)
            with contextlib.suppress(TransportError):
                await delivery.requeue()
            return
        if verdict is None:
            await delivery.ack()
        else:
            await self._dead_letter(delivery, verdict)

    async def _route(self, message: Envelope[Any], redelivered: bool) -> Disposition:
        kind = message.kind
        if kind is MessageKind.REPLY:
            return await self._on_reply(message, redelivered)
        if kind is MessageKind.HEARTBEAT:
            return await self._on_heartbeat(message)
        if kind is MessageKind.STATUS:
            return await self._on_status(message)
        if kind is MessageKind.START:
            return await self._on_start(message, redelivered)
        if kind is MessageKind.RESUME:
            return await self._on_resume(message, redelivered)
        return f"the orchestrator does not take {kind.value} messages"

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        try:
            await self.transport.dead_letter(delivery, reason, queue=self._queue)
        except TransportError:
            log.warning("dead_letter_failed", reason=reason, exc_info=True)

    async def _definition(self, kind: str, name: str | None, version: str | None) -> Definition:
        if name is None:
            raise FlowNotFound("message names neither a flow nor a target")
        if not version:
            raise FlowNotFound(f"message for {kind} {name!r} carries no flow_version")
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

    async def _definition_of(self, message: Envelope[Any]) -> Definition:
        if message.target:
            return await self._definition("block", message.target, message.flow_version)
        return await self._definition("flow", message.flow, message.flow_version)

    async def _commit(
        self, change: Transition, command: Envelope[Any] | None, *, republish: bool
    ) -> Disposition:
        """Apply the transition; publish the command if it applied (or if it had applied
        before and this is a redelivery, whose first handling may have died before the
        publish)."""
        result = await self.store.transition(change)
        if result.outcome is Outcome.NOT_FOUND:
            return f"unknown run {change.run_id!r}"
        applied = result.outcome is Outcome.APPLIED
        if command is not None and (
            applied or (result.outcome is Outcome.ALREADY_APPLIED and republish)
        ):
            await self._publish(command)
        if applied and change.timers_add:
            self.timers.poke(min(due for _, due in change.timers_add))
        if not applied:
            log.debug("transition_skipped", run_id=change.run_id, reason=result.reason)
        return None

    async def _publish(self, command: Envelope[Any]) -> None:
        assert command.service is not None
        await self.transport.publish(
            self.transport.topology.service_key(command.service),
            encode(command),
            message_id=command.message_id,
            headers=headers_for(command),
            kind=command.kind.value,
        )

    # -- start and resume ----------------------------------------------------------------------
    async def _on_start(self, message: Envelope[Any], redelivered: bool) -> Disposition:
        definition = await self._definition_of(message)
        spec, first = definition.spec, definition.steps[0]
        now = self.clock()
        expect = Position(RunState.PENDING, 0, 0, Phase.QUEUED)
        started = run_event(EventKind.RUN_STARTED, now)
        plan = self.planner.dispatch(
            spec,
            first.spec,
            lane=Lane.RUN,
            run_id=message.run_id,
            attempt=1,
            body=message.body,
            now=now,
            traceparent=message.traceparent,
        )
        try:
            command = await call_hook(first.pre, plan.command)
        except Exception as exc:
            return await self._finish(
                message.run_id,
                expect,
                RunState.FAILED,
                now,
                message.message_id,
                events=[started],
                error=_hook_error(exc, first.spec),
                fields={"step_input": message.body, "hook_pending": True},
            )
        if command is None:
            return await self._finish(
                message.run_id,
                expect,
                RunState.SUCCEEDED,
                now,
                message.message_id,
                events=[started, _stopped(first.spec, now)],
                result=message.body,
            )
        change = Transition(
            run_id=message.run_id,
            expect=expect,
            new=Position(RunState.RUNNING, 0, 1, Phase.DISPATCHED),
            cause=message.message_id,
            now=now,
            step_name=first.spec.name,
            fields={"step_input": command.body},
            events=[started, plan.event],
            timers_add=plan.timers,
        )
        return await self._commit(change, command, republish=redelivered)

    async def _on_resume(self, message: Envelope[Any], redelivered: bool) -> Disposition:
        record = await self.store.get_run(message.run_id)
        if record is None:
            return f"unknown run {message.run_id!r}"
        definition = await self._definition(record.kind, record.flow, record.version)
        step = definition.spec.step(message.step)
        if step is None:
            return f"step {message.step} is past the end of {record.flow!r}"
        lane, state = message.lane, lane_state(message.lane)
        body = record.step_input if lane is Lane.RUN else record.outputs.get(step.index)
        now = self.clock()
        plan = self.planner.dispatch(
            definition.spec,
            step,
            lane=lane,
            run_id=record.run_id,
            attempt=message.attempt,
            body=body,
            now=now,
            traceparent=message.traceparent,
        )
        expect = Position(state, step.index, message.attempt, Phase.QUEUED)
        command: Envelope[Any] | None = plan.command
        fields: dict[str, Any] = {}
        if record.hook_pending and lane is Lane.RUN:
            try:
                command = await call_hook(definition.steps[step.index].pre, plan.command)
            except Exception as exc:
                return await self._finish(
                    record.run_id,
                    expect,
                    RunState.FAILED,
                    now,
                    message.message_id,
                    events=[],
                    error=_hook_error(exc, step),
                )
            if command is None:
                return await self._finish(
                    record.run_id,
                    expect,
                    RunState.SUCCEEDED,
                    now,
                    message.message_id,
                    events=[_stopped(step, now)],
                    result=body,
                )
            fields = {"hook_pending": None, "step_input": command.body}
        change = Transition(
            run_id=record.run_id,
            expect=expect,
            new=Position(state, step.index, message.attempt, Phase.DISPATCHED),
            cause=message.message_id,
            now=now,
            step_name=step.name,
            fields=fields,
            events=[plan.event],
            timers_add=plan.timers,
        )
        return await self._commit(change, command, republish=redelivered)

    # -- replies -----------------------------------------------------------------------------
    async def _on_reply(self, reply: Envelope[Any], redelivered: bool) -> Disposition:
        definition = await self._definition_of(reply)
        step = definition.spec.step(reply.step)
        if step is None:
            return f"step {reply.step} is past the end of {definition.spec.name!r}"
        lane, now = reply.lane, self.clock()
        expect = Position(lane_state(lane), step.index, reply.attempt)
        ignored = step_event(
            EventKind.REPLY_IGNORED,
            step,
            reply.attempt,
            now,
            error=reply.error,
            component=reply.service,
            message_id=reply.message_id,
        )
        if reply.error is not None:
            kind = EventKind.STEP_FAILED if lane is Lane.RUN else EventKind.COMPENSATION_FAILED
            failed = step_event(
                kind,
                step,
                reply.attempt,
                now,
                error=reply.error,
                component=reply.service,
                duration_ms=reply.duration_ms,
                message_id=reply.message_id,
            )
            return await self._attempt_failed(
                definition,
                reply.run_id,
                lane,
                step,
                reply.attempt,
                reply.error,
                now,
                cause=reply.message_id,
                expect=expect,
                failed=failed,
                ignored=ignored,
                republish=redelivered,
            )
        if lane is Lane.COMPENSATE:
            return await self._compensated(
                definition, reply, step, now, expect, ignored, redelivered
            )
        completed = step_event(
            EventKind.STEP_COMPLETED,
            step,
            reply.attempt,
            now,
            component=reply.service,
            duration_ms=reply.duration_ms,
        )
        fields: dict[str, Any] = {}
        if step.compensate:
            fields[f"out:{step.index}"] = reply.body
        compiled = definition.steps[step.index]
        following = definition.spec.step(step.index + 1)
        try:
            hooked = compiled.post
            forwarded = await call_hook(compiled.post, reply) or reply
            command = plan = None
            if following is not None:
                hooked = definition.steps[following.index].pre
                plan = self.planner.dispatch(
                    definition.spec,
                    following,
                    lane=Lane.RUN,
                    run_id=reply.run_id,
                    attempt=1,
                    body=forwarded.body,
                    now=now,
                    source=step.name,
                    traceparent=reply.traceparent,
                )
                command = await call_hook(hooked, plan.command)
        except Exception as exc:
            in_pre = following is not None and hooked is not compiled.post
            culprit = following if in_pre and following is not None else step
            error = _hook_error(exc, culprit)
            decision = GiveUp(RunState.FAILED, definition.spec.compensation_before(step.index + 1))
            if in_pre:  # the run stops before the next step: a retry starts with its pre hook
                fields = {**fields, "step_input": forwarded.body, "hook_pending": True}
            return await self._give_up(
                definition,
                reply.run_id,
                step,
                error,
                now,
                reply.message_id,
                expect,
                [completed],
                decision,
                fields=fields,
                ignored=ignored,
                republish=redelivered,
                at_step=culprit if in_pre else None,
            )
        if command is None or plan is None:
            events = [completed]
            if following is not None:
                events.append(_stopped(following, now))
            return await self._finish(
                reply.run_id,
                expect,
                RunState.SUCCEEDED,
                now,
                reply.message_id,
                events=events,
                result=forwarded.body,
                fields=fields,
                ignored=ignored,
            )
        change = Transition(
            run_id=reply.run_id,
            expect=expect,
            new=Position(RunState.RUNNING, step.index + 1, 1, Phase.DISPATCHED),
            cause=reply.message_id,
            now=now,
            step_name=command.step_name,
            fields={**fields, "step_input": command.body},
            events=[completed, plan.event],
            ignored=ignored,
            clear_timers=True,
            timers_add=plan.timers,
        )
        return await self._commit(change, command, republish=redelivered)

    async def _compensated(
        self,
        definition: Definition,
        reply: Envelope[Any],
        step: StepSpec,
        now: float,
        expect: Position,
        ignored: Event,
        redelivered: bool,
    ) -> Disposition:
        done = step_event(
            EventKind.COMPENSATION_COMPLETED,
            step,
            reply.attempt,
            now,
            component=reply.service,
            duration_ms=reply.duration_ms,
            message_id=reply.message_id,
        )
        following = definition.spec.compensation_before(step.index)
        if following is None:
            return await self._finish(
                reply.run_id,
                expect,
                RunState.COMPENSATED,
                now,
                reply.message_id,
                events=[done],
                ignored=ignored,
            )
        return await self._compensate(
            definition,
            reply.run_id,
            following,
            now,
            reply.message_id,
            expect,
            [done],
            ignored=ignored,
            republish=redelivered,
            traceparent=reply.traceparent,
        )

    # -- failures ----------------------------------------------------------------------------
    async def _attempt_failed(
        self,
        definition: Definition,
        run_id: str,
        lane: Lane,
        step: StepSpec,
        attempt: int,
        error: ErrorInfo,
        now: float,
        *,
        cause: str,
        expect: Position,
        failed: Event,
        ignored: Event | None = None,
        republish: bool = True,
        final: bool = False,
    ) -> Disposition:
        decision = self.planner.on_failure(
            definition.spec,
            step,
            lane=lane,
            run_id=run_id,
            attempt=attempt,
            error=error,
            now=now,
            final=final,
        )
        if isinstance(decision, GiveUp):
            return await self._give_up(
                definition,
                run_id,
                step,
                error,
                now,
                cause,
                expect,
                [failed],
                decision,
                ignored=ignored,
                republish=republish,
            )
        scheduled = step_event(
            EventKind.RETRY_SCHEDULED,
            step,
            decision.attempt,
            now,
            component="orchestrator",
            body={"delay": round(decision.delay, 3), "after_attempt": attempt},
        )
        change = Transition(
            run_id=run_id,
            expect=expect,
            new=Position(lane_state(lane), step.index, decision.attempt, Phase.BACKOFF),
            cause=cause,
            now=now,
            events=[failed, scheduled],
            ignored=ignored,
            timers_remove=self.planner.attempt_timers(run_id, lane, step, attempt),
            timers_add=[decision.timer],
        )
        return await self._commit(change, None, republish=republish)

    async def _give_up(
        self,
        definition: Definition,
        run_id: str,
        step: StepSpec,
        error: ErrorInfo,
        now: float,
        cause: str,
        expect: Position,
        events: list[Event],
        decision: GiveUp,
        *,
        fields: dict[str, Any] | None = None,
        ignored: Event | None = None,
        republish: bool = True,
        at_step: StepSpec | None = None,
    ) -> Disposition:
        comp = decision.compensate
        if comp is None:
            return await self._finish(
                run_id,
                expect,
                decision.state,
                now,
                cause,
                events=events,
                error=error,
                fields=fields,
                ignored=ignored,
                at_step=at_step,
            )
        fields = {
            **(fields or {}),
            "error": error.model_dump(exclude_none=True),
            "outcome": decision.state.value,
        }
        return await self._compensate(
            definition,
            run_id,
            comp,
            now,
            cause,
            expect,
            events,
            fields=fields,
            ignored=ignored,
            republish=republish,
        )

    async def _compensate(
        self,
        definition: Definition,
        run_id: str,
        step: StepSpec,
        now: float,
        cause: str,
        expect: Position,
        events: list[Event],
        *,
        fields: dict[str, Any] | None = None,
        ignored: Event | None = None,
        republish: bool = True,
        traceparent: str | None = None,
    ) -> Disposition:
        """Dispatch the compensation of ``step`` with the output that step produced (kept in
        the run, or among the ``fields`` this very transition writes)."""
        record = await self.store.get_run(run_id)
        outputs = dict(record.outputs) if record else {}
        for name, value in (fields or {}).items():
            if name.startswith("out:"):
                outputs[int(name[4:])] = value
        plan = self.planner.dispatch(
            definition.spec,
            step,
            lane=Lane.COMPENSATE,
            run_id=run_id,
            attempt=1,
            body=outputs.get(step.index),
            now=now,
            traceparent=traceparent,
        )
        change = Transition(
            run_id=run_id,
            expect=expect,
            new=Position(RunState.COMPENSATING, step.index, 1, Phase.DISPATCHED),
            cause=cause,
            now=now,
            step_name=step.name,
            fields=fields or {},
            events=[*events, plan.event],
            ignored=ignored,
            clear_timers=True,
            timers_add=plan.timers,
        )
        return await self._commit(change, plan.command, republish=republish)

    async def _finish(
        self,
        run_id: str,
        expect: Position,
        state: RunState,
        now: float,
        cause: str,
        *,
        events: list[Event],
        error: ErrorInfo | None = None,
        result: Any = None,
        fields: dict[str, Any] | None = None,
        ignored: Event | None = None,
        at_step: StepSpec | None = None,
    ) -> Disposition:
        data = dict(fields or {})
        if error is not None:
            data["error"] = error.model_dump(exclude_none=True)
        if state is RunState.SUCCEEDED:
            data["result"] = result
        change = Transition(
            run_id=run_id,
            expect=expect,
            new=Position(
                state, None if at_step is None else at_step.index, None if at_step is None else 0
            ),
            cause=cause,
            now=now,
            step_name=None if at_step is None else at_step.name,
            fields=data,
            events=[*events, run_event(FINISH_EVENT[state], now, error=error)],
            ignored=ignored,
        )
        return await self._commit(change, None, republish=False)

    # -- heartbeats and status events ----------------------------------------------------------
    async def _on_heartbeat(self, message: Envelope[Any]) -> Disposition:
        definition = await self._definition_of(message)
        step = definition.spec.step(message.step)
        if step is None:
            return f"step {message.step} is past the end of {definition.spec.name!r}"
        lane, now = message.lane, self.clock()
        limits = self.planner.timeouts(step)
        member = self.planner.timer
        execution = heartbeat = None
        if limits.execution:
            execution = (
                member(message.run_id, TimerKind.EXECUTION, lane, step, message.attempt),
                now + limits.execution,
            )
        if limits.heartbeat:
            heartbeat = (
                member(message.run_id, TimerKind.HEARTBEAT, lane, step, message.attempt),
                now + limits.heartbeat,
            )
        progress = None
        if message.progress is not None:
            progress = step_event(
                EventKind.HEARTBEAT,
                step,
                message.attempt,
                now,
                component=message.service,
                body=message.progress,
            )
        beat = Beat(
            run_id=message.run_id,
            state=lane_state(lane),
            step=step.index,
            attempt=message.attempt,
            now=now,
            started=step_event(
                EventKind.STEP_STARTED,
                step,
                message.attempt,
                now,
                component=message.service,
                message_id=message.message_id,
            ),
            progress=progress,
            dispatch_timer=member(message.run_id, TimerKind.DISPATCH, lane, step, message.attempt),
            execution_timer=execution,
            heartbeat_timer=heartbeat,
        )
        outcome = await self.store.heartbeat(beat)
        if outcome == "NOT_FOUND":
            return f"unknown run {message.run_id!r}"
        dues = [t[1] for t in (execution, heartbeat) if t is not None]
        if dues:
            self.timers.poke(min(dues))
        return None

    async def _on_status(self, message: Envelope[Any]) -> Disposition:
        info = message.status
        if info is None:
            return "status message without a `status` field"
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
        return None if state is not None else f"unknown run {message.run_id!r}"

    # -- timers ------------------------------------------------------------------------------
    async def on_timer(self, timer: TimerId) -> None:
        """Handle one due timer (called by the timer loop, under a lease)."""
        now = self.clock()
        if timer.kind is TimerKind.DEADLINE:
            error = timeout_error(TimerKind.DEADLINE, None)
            change = Transition.any_active(
                run_id=timer.run_id,
                new=Position(RunState.TIMED_OUT, None, None),
                cause=str(timer),
                now=now,
                fields={"error": error.model_dump(exclude_none=True)},
                events=[run_event(EventKind.RUN_TIMED_OUT, now, error=error)],
            )
            result = await self.store.transition(change)
            if result.outcome is Outcome.APPLIED:
                await self.notify_cancel(timer.run_id)
            return
        record = await self.store.get_run(timer.run_id)
        if record is None or record.state.terminal:
            return
        definition = await self._definition(record.kind, record.flow, record.version)
        step = definition.spec.step(timer.step)
        if step is None:
            return
        lane, state = timer.lane, lane_state(timer.lane)
        if timer.kind is TimerKind.RETRY:
            body = record.step_input if lane is Lane.RUN else record.outputs.get(step.index)
            plan = self.planner.dispatch(
                definition.spec,
                step,
                lane=lane,
                run_id=timer.run_id,
                attempt=timer.attempt,
                body=body,
                now=now,
            )
            change = Transition(
                run_id=timer.run_id,
                expect=Position(state, step.index, timer.attempt, Phase.BACKOFF),
                new=Position(state, step.index, timer.attempt, Phase.DISPATCHED),
                cause=str(timer),
                now=now,
                events=[plan.event],
                timers_add=plan.timers,
            )
            await self._commit(change, plan.command, republish=True)
            return
        limits = self.planner.timeouts(step)
        seconds = {
            TimerKind.DISPATCH: limits.dispatch,
            TimerKind.HEARTBEAT: limits.heartbeat,
            TimerKind.EXECUTION: limits.execution,
            TimerKind.TOTAL: limits.total,
        }[timer.kind]
        error = timeout_error(timer.kind, seconds)
        total = timer.kind is TimerKind.TOTAL
        phase = Phase.DISPATCHED if timer.kind is TimerKind.DISPATCH else Phase.STARTED
        attempt = record.attempt if total else timer.attempt
        expect = Position(state, step.index, None if total else attempt, None if total else phase)
        failed = step_event(
            EventKind.STEP_TIMED_OUT, step, attempt, now, error=error, component="orchestrator"
        )
        before = record.attempt, record.step, record.state
        await self._attempt_failed(
            definition,
            timer.run_id,
            lane,
            step,
            attempt,
            error,
            now,
            cause=str(timer),
            expect=expect,
            failed=failed,
            final=total,
        )
        if before == (attempt, step.index, state):
            await self.notify_cancel(timer.run_id, step=step, attempt=attempt, lane=lane)

    async def notify_cancel(
        self,
        run_id: str,
        *,
        step: StepSpec | None = None,
        attempt: int = 1,
        lane: Lane = Lane.RUN,
    ) -> None:
        """Tell every service process to stop work of the run (or of one attempt)."""
        await send_cancel(self.transport, run_id, step=step, attempt=attempt, lane=lane)


async def send_cancel(
    transport: Transport,
    run_id: str,
    *,
    step: StepSpec | None = None,
    attempt: int = 1,
    lane: Lane = Lane.RUN,
) -> None:
    """Publish a cancel notice on the control exchange (best effort: a lost notice only means
    the handler runs to its end and its reply is recorded as a late result)."""
    target = None if step is None else command_message_id(run_id, step.index, attempt, lane)
    notice = Envelope[Any](
        kind=MessageKind.CANCEL,
        message_id=f"{target or run_id}:cancel",
        run_id=run_id,
        body={"message_id": target},
    )
    try:
        await transport.publish_control(encode(notice), message_id=notice.message_id)
    except TransportError:
        log.warning("cancel_notice_failed", run_id=run_id, exc_info=True)


def _stopped(step: StepSpec, now: float) -> Event:
    return Event(
        kind=EventKind.RUN_STOPPED,
        time=now,
        step=step.index,
        step_name=step.name,
        component="orchestrator",
        reason="pre hook returned None",
    )


def _hook_error(exc: Exception, step: StepSpec) -> ErrorInfo:
    return ErrorInfo(
        type="HookError",
        message=f"a hook of step {step.name!r} raised {type(exc).__name__}: {exc}",
        retryable=False,
    )


__all__ = ["Clock", "Engine", "send_cancel"]
