"""Starting runs and reading them back: what callers, the CLI and tests use."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from orch_serv.constants import EventKind, Lane, Phase, RunState
from orch_serv.exceptions import ConfigurationError, FlowNotFound, InvalidRunState, RunNotFound
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.codec import encode, headers_for
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.engine import send_cancel
from orch_serv.orchestrator.plan import resume_message, start_message
from orch_serv.store.base import Event, NewRun, Outcome, Position, RunRecord, RunStore, Transition
from orch_serv.transport.base import Transport

#: How long a client trusts the flow definition it looked up (starts skip two Redis reads).
SPEC_CACHE_SECONDS = 2.0

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_run_id() -> str:
    """A random 128-bit run id in 22 base-62 characters (it is in every key and index entry
    of the run, so shorter than hex pays off in memory)."""
    value = uuid.uuid4().int
    chars = []
    for _ in range(22):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


class Client:
    """Starts runs of the flows that orchestrators registered, and reads runs back."""

    def __init__(
        self,
        transport: Transport | None,
        store: RunStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport
        self.store = store
        self.clock = clock
        self._specs: dict[tuple[str | None, str | None], tuple[FlowSpec, float]] = {}

    async def resolve(self, flow: str | None = None, target: str | None = None) -> FlowSpec:
        """The registered definition a start would run (falling back to the defaults).
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
        default_flow, default_block = await self.store.defaults()
        if target is not None:
            spec = await self.store.get_spec("block", target)
            if spec is None and default_block:
                spec = await self.store.get_spec("block", default_block)
            what = f"block {target!r}"
        elif flow is not None:
            spec = await self.store.get_spec("flow", flow)
            if spec is None and default_flow:
                spec = await self.store.get_spec("flow", default_flow)
            what = f"flow {flow!r}"
        else:
            raise FlowNotFound("give a flow or a target block")
        if spec is None:
            known = [
                s.name
                for s in await self.store.list_specs()
                if s.kind == ("block" if target is not None else "flow")
            ]
            raise FlowNotFound(f"unknown {what}; registered: {known}")
        return spec

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
        """Start a run and return its id. A second start with the same ``key`` returns the
        first run's id (and starts nothing new). ``deadline`` (seconds) overrides the flow's
        run deadline."""
        transport = self._transport()
        spec = await self.resolve(flow, target)
        now = self.clock()
        limit = deadline if deadline is not None else spec.deadline
        created = await self.store.create_run(
            NewRun(
                run_id=new_run_id(),
                spec=spec,
                input=body,
                now=now,
                key=key,
                deadline=None if limit is None else now + limit,
            )
        )
        if not created.created and created.state is not RunState.PENDING:
            return created.run_id
        name, kind, version = spec.name, str(spec.kind), spec.version
        if not created.created:
            # An earlier start with this key may have died before publishing: publish again,
            # for the definition and body that run was created with.
            existing = await self.store.get_run(created.run_id)
            if existing is None:
                return created.run_id
            body, name, kind, version = (
                existing.input,
                existing.flow,
                existing.kind,
                existing.version,
            )
        message = start_message(created.run_id, kind, name, version, body, traceparent)
        await self._send(transport, message)
        return created.run_id

    def _transport(self) -> Transport:
        if self.transport is None:
            raise ConfigurationError("this client has no transport; it can only read runs")
        return self.transport

    @staticmethod
    async def _send(transport: Transport, message: Envelope[Any]) -> None:
        await transport.declare_orchestrator()  # idempotent, and cached by the transport
        await transport.publish(
            transport.topology.orchestrator_key,
            encode(message),
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
        cause = f"{run_id}:cancel"
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
            cause=f"{run_id}:retry:{attempt}",
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
