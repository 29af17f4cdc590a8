"""Starting runs and reading them back: what callers, the CLI and tests use."""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Callable
from typing import Any

import orjson

from orch_serv.constants import EventKind, Lane, Phase, RunState
from orch_serv.exceptions import (
    ConfigurationError,
    FlowNotFound,
    IdempotencyConflict,
    InvalidRunState,
    MessageTooLarge,
    RunNotFound,
)
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages import ids
from orch_serv.messages.codec import encode, headers_for
from orch_serv.messages.envelope import Envelope
from orch_serv.observability import tracing
from orch_serv.orchestrator import direct_start
from orch_serv.orchestrator.cancel import send_cancel
from orch_serv.orchestrator.core.dispatch import resume_message, start_message
from orch_serv.settings import DEFAULT_MAX_MESSAGE_BYTES
from orch_serv.store.base import (
    CreateResult,
    Event,
    NewRun,
    Outcome,
    Position,
    RunRecord,
    RunStore,
    Transition,
)
from orch_serv.transport.base import Transport

#: How long a client trusts the flow definition it looked up (starts skip two Redis reads).
SPEC_CACHE_SECONDS = 2.0


class Client:
    """Starts runs of the flows that orchestrators registered, and reads runs back.

    ``max_message_bytes`` is the largest start message it sends (``Settings.max_message_bytes``
    of the orchestrators, which dead-letter anything larger): a larger start is refused with
    :class:`MessageTooLarge` before anything is written.

    A start commits the run's first dispatch and publishes its command itself when the
    orchestrators allow it (:mod:`~orch_serv.orchestrator.direct_start`); with
    ``direct_starts=False`` it always sends a START to the orchestrators instead."""

    def __init__(
        self,
        transport: Transport | None,
        store: RunStore,
        *,
        clock: Callable[[], float] = time.time,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        direct_starts: bool = True,
    ) -> None:
        self.transport = transport
        self.direct_starts = direct_starts
        self.store = store
        self.clock = clock
        self.max_message_bytes = max_message_bytes
        self._specs: dict[tuple[str | None, str | None], tuple[FlowSpec, float]] = {}
        self._direct: tuple[direct_start.DirectStart | None, float] | None = None

    async def resolve(self, flow: str | None = None, target: str | None = None) -> FlowSpec:
        """The registered definition a start would run: the block ``target``, else the flow
        ``flow``, else (neither named) the registered default flow, then default block.

        A name that is not registered raises :class:`FlowNotFound` with the registered names
        and the closest one ("did you mean 'profile'?"); it never falls back to a default.
        Kept for ``SPEC_CACHE_SECONDS``: a redeployed flow is picked up within that time."""
        key = (flow, target)
        cached = self._specs.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        spec = await self._resolve(flow, target)
        self._specs[key] = (spec, now + SPEC_CACHE_SECONDS)
        return spec

    async def _resolve(self, flow: str | None, target: str | None) -> FlowSpec:
        if target is not None:
            kind, name = "block", target
        elif flow is not None:
            kind, name = "flow", flow
        else:
            return await self._default()
        spec = await self.store.get_spec(kind, name)
        if spec is None:
            known = sorted(s.name for s in await self.store.list_specs() if s.kind == kind)
            raise FlowNotFound(unknown_name_message(kind, name, known))
        return spec

    async def _default(self) -> FlowSpec:
        default_flow, default_block = await self.store.defaults()
        for kind, name in (("flow", default_flow), ("block", default_block)):
            if name:
                spec = await self.store.get_spec(kind, name)
                if spec is not None:
                    return spec
        raise FlowNotFound("give a flow or a target block: no default flow is registered")

    async def start(
        self,
        flow: str | None = None,
        body: Any = None,
        *,
        key: str | None = None,
        target: str | None = None,
        traceparent: str | None = None,
        deadline: float | None = None,
    ) -> str:
        """Start a run and return its id. ``flow``/``target`` are resolved by
        :meth:`resolve` (an unknown name raises :class:`FlowNotFound`).

        A second start with the same ``key`` returns the first run's id (and starts nothing
        new); with a ``key`` that names a run of another flow or block it raises
        :class:`IdempotencyConflict`. A start message larger than ``max_message_bytes``
        raises :class:`MessageTooLarge` before anything is written. ``deadline`` (seconds,
        > 0) overrides the flow's run deadline."""
        if deadline is not None and not deadline > 0:
            raise ValueError(f"deadline must be a number of seconds > 0, got {deadline!r}")
        transport = self._transport()
        spec = await self.resolve(flow, target)
        run_id = self.store.new_run_id(key)
        if traceparent is None:  # the caller's current span, when tracing is on: a link
            traceparent = tracing.current_traceparent()
        now = self.clock()
        direct = await self._direct_start(spec)
        plan = message = None
        if direct is not None:  # the first command is what goes out: its size is checked
            plan = direct_start.first_dispatch(direct, spec, run_id, body, now, traceparent)
            data = encode(plan.command)
        else:
            message = start_message(run_id, spec.kind, spec.name, spec.version, body, traceparent)
            data = encode(message)
        if len(data) > self.max_message_bytes:
            raise MessageTooLarge(
                f"the start of {spec.kind} {spec.name!r} is {len(data)} bytes, over the limit "
                f"of {self.max_message_bytes} bytes (max_message_bytes); nothing was started"
            )
        limit = deadline if deadline is not None else spec.deadline
        new = NewRun(
            run_id=run_id,
            spec=spec,
            input=body,
            now=now,
            key=key,
            deadline=None if limit is None else now + limit,
        )
        if plan is None:
            created = await self.store.create_run(new)
        else:  # one round trip: the store pipelines the two scripts, in this order
            created, committed = await asyncio.gather(
                self.store.create_run(new), self.store.transition(plan.commit)
            )
        if not created.created:
            return await self._started_before(transport, created, spec, key, traceparent)
        if plan is not None:
            if committed.outcome is Outcome.NOT_FOUND:  # a store that ran them out of order
                committed = await self.store.transition(plan.commit)
            if committed.outcome is Outcome.APPLIED:
                await direct_start.send_first(transport, self.store, plan.command, data)
                return run_id
            data = b""  # a fresh run id always takes it; should it not, the START path is safe
        if message is None:
            message = start_message(run_id, spec.kind, spec.name, spec.version, body, traceparent)
        await self._send(transport, message, data)
        return run_id

    async def _direct_start(self, spec: FlowSpec) -> direct_start.DirectStart | None:
        """How to dispatch ``spec``'s first step here, or None: send a START (see
        :mod:`~orch_serv.orchestrator.direct_start`). Kept for ``SPEC_CACHE_SECONDS``."""
        if not self.direct_starts or not direct_start.eligible(spec):
            return None
        now = time.monotonic()
        if self._direct is None or self._direct[1] <= now:
            namespace = self._transport().topology.namespace
            found = await direct_start.read(self.store, namespace)
            self._direct = (found, now + SPEC_CACHE_SECONDS)
        return self._direct[0]

    async def _started_before(
        self,
        transport: Transport,
        created: CreateResult,
        spec: FlowSpec,
        key: str | None,
        traceparent: str | None,
    ) -> str:
        """The run that already holds ``key``: the same flow's run is returned (its start
        published again while it is PENDING: the first client may have died before it);
        another flow's is a conflict."""
        existing = await self.store.get_run(created.run_id)
        if existing is None:  # expired in between
            return created.run_id
        if (existing.kind, existing.flow) != (spec.kind, spec.name):
            raise IdempotencyConflict(
                f"idempotency key {key!r} already belongs to run {existing.run_id!r} of "
                f"{existing.kind} {existing.flow!r}, not {spec.kind} {spec.name!r}; "
                "use another key",
                key=key or "",
                run_id=existing.run_id,
                flow=existing.flow,
                kind=existing.kind,
            )
        if existing.state is RunState.PENDING:
            message = start_message(
                existing.run_id,
                existing.kind,
                existing.flow,
                existing.version,
                existing.input,
                traceparent,
            )
            await self._send(transport, message)
        return existing.run_id

    def _transport(self) -> Transport:
        if self.transport is None:
            raise ConfigurationError("this client has no transport; it can only read runs")
        return self.transport

    @staticmethod
    async def _send(transport: Transport, message: Envelope[Any], data: bytes = b"") -> None:
        await transport.declare_orchestrator()  # idempotent, and cached by the transport
        await transport.publish(
            transport.topology.orchestrator_key,
            data or encode(message),
            message_id=message.message_id,
            headers=headers_for(message),
            kind=message.kind.value,
        )

    async def cancel(self, run_id: str, *, compensate: bool = False, reason: str = "") -> RunRecord:
        """Cancel a run now (CANCELLED at once; services are told to stop its work; what
        arrives later is recorded and ignored). With ``compensate``, the compensations of
        the steps it completed run first (the run then ends COMPENSATED or
        COMPENSATION_FAILED)."""
        transport = self._transport()
        record = await self.get(run_id)
        if record.done:
            raise InvalidRunState(f"run {run_id!r} is already {record.state.value}")
        now = self.clock()
        event = Event(
            kind=EventKind.RUN_CANCELLED,
            time=now,
            component="client",
            reason=reason or "cancelled by request",
        )
        comp = None
        if compensate and record.state is RunState.RUNNING:
            spec = await self.store.get_spec(record.kind, record.flow, record.version)
            comp = spec.compensation_before(record.step) if spec else None
        if comp is None:
            new = Position(RunState.CANCELLED, None, None)
            fields: dict[str, Any] = {}
        else:
            new = Position(RunState.COMPENSATING, comp.index, 1, Phase.QUEUED)
            fields = {"outcome": RunState.CANCELLED.value}
        cause = ids.cancel_cause(run_id)
        result = await self.store.transition(
            Transition.any_active(
                run_id=run_id,
                new=new,
                cause=cause,
                now=now,
                events=[event],
                fields=fields,
                clear_timers=True,
            )
        )
        if result.outcome is not Outcome.APPLIED:
            raise InvalidRunState(f"run {run_id!r} finished before it could be cancelled")
        await send_cancel(transport, run_id)
        await _poke_group(self.store, record, now)
        if comp is not None:
            await self._send(transport, self._resume(record, comp.index, 1, Lane.COMPENSATE))
        return await self.get(run_id)

    async def retry(self, run_id: str) -> RunRecord:
        """Resume a FAILED or TIMED_OUT run from the step that failed, as a new attempt."""
        transport = self._transport()
        record = await self.get(run_id)
        if record.state not in (RunState.FAILED, RunState.TIMED_OUT):
            raise InvalidRunState(
                f"only FAILED or TIMED_OUT runs can be retried; {run_id!r} is {record.state.value}"
            )
        now = self.clock()
        attempt = record.attempt + 1
        change = Transition(
            run_id=run_id,
            expect=Position(record.state, record.step, record.attempt),
            new=Position(RunState.RUNNING, record.step, attempt, Phase.QUEUED),
            cause=ids.retry_cause(run_id, attempt),
            now=now,
            fields={"error": None, "deadline": None, "finished_at": None},
            events=[
                Event(
                    kind=EventKind.RUN_RESUMED,
                    time=now,
                    step=record.step,
                    step_name=record.step_name,
                    attempt=attempt,
                    component="client",
                )
            ],
        )
        result = await self.store.transition(change)
        if result.outcome is not Outcome.APPLIED:
            raise InvalidRunState(f"run {run_id!r} changed while it was being retried")
        await self._send(transport, self._resume(record, record.step, attempt, Lane.RUN))
        return await self.get(run_id)

    @staticmethod
    def _resume(record: RunRecord, step: int, attempt: int, lane: Lane) -> Envelope[Any]:
        return resume_message(
            record.run_id,
            record.kind,
            record.flow,
            record.version,
            step=step,
            attempt=attempt,
            lane=lane,
        )

    async def signal(
        self, run_id: str, name: str, data: Any = None, *, component: str = "client"
    ) -> RunRecord:
        """Send signal ``name`` (with ``data``, any JSON value) to a run: a wait step of the
        run waiting for it (``WaitForSignal``) moves on, now or when the run gets there.
        Sending it again replaces its data. Raises :class:`RunNotFound`, and
        :class:`InvalidRunState` for a finished run; ``ValueError`` for a bad name or data."""
        from orch_serv.flow.block import NAME_PATTERN
        from orch_serv.messages.limits import check_json_numbers
        from orch_serv.store.signals import SignalAnswer, signals_of

        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ValueError(
                "a signal name is 1-128 characters of letters, digits, '_', '.' or '-', "
                f"not {name!r}"
            )
        check_json_numbers(data)
        try:
            size = len(orjson.dumps(data))
        except TypeError as exc:  # orjson.JSONEncodeError: not JSON, or nested too deep
            raise ValueError(f"signal data must be a JSON value: {exc}") from exc
        if size > self.max_message_bytes:
            raise MessageTooLarge(
                f"signal data is {size} bytes, more than the {self.max_message_bytes} allowed"
            )
        sent = await signals_of(self.store).send(
            run_id, name, data, now=self.clock(), component=component
        )
        if sent.answer is SignalAnswer.NOT_FOUND:
            raise RunNotFound(f"run {run_id!r} not found")
        if sent.answer is SignalAnswer.FINISHED:
            raise InvalidRunState(f"run {run_id!r} is already {sent.state}: it takes no signal")
        return await self.get(run_id)

    async def get(self, run_id: str) -> RunRecord:
        """The run; raises :class:`RunNotFound`."""
        record = await self.store.get_run(run_id)
        if record is None:
            raise RunNotFound(f"run {run_id!r} not found")
        return record

    async def events(self, run_id: str) -> list[Event]:
        """The run's history; raises :class:`RunNotFound` for an unknown run."""
        await self.get(run_id)
        return await self.store.get_events(run_id)

    async def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait until the run is finished (raises TimeoutError)."""
        return await self.store.wait_finished(run_id, timeout)


async def _poke_group(store: RunStore, record: RunRecord, now: float) -> None:
    """A run cancelled at a group step: make the group's check due now, so that it cancels
    the members still running (docs/groups.md)."""
    from orch_serv.store.groups import group_timer  # loads nothing of redis

    await store.move_timer(group_timer(record.run_id, record.step, record.attempt), now)


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """ "unknown flow 'profil': did you mean 'profile'? registered flows: ..." (or that none
    is registered, which usually means another namespace or no orchestrator yet)."""
    if not known:
        return (
            f"unknown {kind} {name!r}: no {kind}s are registered "
            "(is an orchestrator running with this namespace and key prefix?)"
        )
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(repr(k) for k in known)
    return f"unknown {kind} {name!r}:{hint} registered {kind}s: {listed}"
