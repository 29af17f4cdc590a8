"""Starting runs and reading them back: what callers, the CLI and tests use."""

from __future__ import annotations

import time
import uuid
from typing import Any

from orch_serv.constants import MessageKind, RunState
from orch_serv.exceptions import FlowNotFound, RunNotFound
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.codec import encode, headers_for
from orch_serv.messages.envelope import Envelope
from orch_serv.store.base import Event, NewRun, RunRecord, RunStore
from orch_serv.transport.base import Transport


class Client:
    """Starts runs of the flows that orchestrators registered, and reads runs back."""

    def __init__(self, transport: Transport | None, store: RunStore) -> None:
        self.transport = transport
        self.store = store

    async def resolve(self, flow: str | None = None, target: str | None = None) -> FlowSpec:
        """The registered definition a start would run (falling back to the defaults)."""
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
    ) -> str:
        """Start a run and return its id. A second start with the same ``key`` returns the
        first run's id (and starts nothing new)."""
        if self.transport is None:
            raise FlowNotFound("this client has no transport; it can only read runs")
        spec = await self.resolve(flow, target)
        run_id = uuid.uuid4().hex
        created = await self.store.create_run(
            NewRun(run_id=run_id, spec=spec, input=body, now=time.time(), key=key)
        )
        if created.created or created.state is RunState.PENDING:
            if not created.created:
                existing = await self.store.get_run(created.run_id)
                body = existing.input if existing else body
            message = Envelope[Any](
                kind=MessageKind.START,
                message_id=f"{created.run_id}:start",
                run_id=created.run_id,
                flow=spec.name if spec.kind == "flow" else None,
                target=spec.name if spec.kind == "block" else None,
                flow_version=spec.version,
                traceparent=traceparent,
                body=body,
            )
            await self.transport.publish(
                self.transport.topology.orchestrator_key,
                encode(message),
                message_id=message.message_id,
                headers=headers_for(message),
                kind=message.kind.value,
            )
        return created.run_id

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
