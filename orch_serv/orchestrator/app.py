"""``Orchestrator``: the flows (and, for the all-in-one mode, the services) of an application.

::

    orchestrator = Orchestrator(flows=[Ingest, Profile], default_flow="ingest",
                                services=[validator, transformer, publisher])

    async with orchestrator.run(Settings()) as running:
        run_id = await running.start("ingest", {"path": "data.csv"})
        record = await running.wait(run_id)

``orch-serv orchestrator module:orchestrator`` serves its flows; ``orch-serv service
module:orchestrator`` hosts its services; ``orch-serv dev module:orchestrator`` does both.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import ModuleType

from orch_serv.backends import open_backends
from orch_serv.flow.block import Block
from orch_serv.flow.flow import Flow
from orch_serv.flow.registry import FlowRegistry
from orch_serv.orchestrator.client import Client
from orch_serv.orchestrator.engine import Clock, Engine
from orch_serv.service.definition import Service
from orch_serv.service.worker import ServiceWorker
from orch_serv.settings import Settings
from orch_serv.statusmodel.model import StatusModel
from orch_serv.store.base import RunStore
from orch_serv.transport.base import Transport


class Running(Client):
    """A connected orchestrator: a :class:`Client` plus the engine (and workers) it runs."""

    def __init__(
        self, transport: Transport, store: RunStore, engine: Engine, workers: list[ServiceWorker]
    ) -> None:
        super().__init__(
            transport,
            store,
            clock=engine.clock,
            max_message_bytes=engine.settings.max_message_bytes,
        )
        self.engine = engine
        self.workers = workers


def _status_models(flows: object, given: Iterable[StatusModel]) -> list[StatusModel]:
    """The models to publish: those given, and those flows declare as objects (a name
    clash between two different models is an error)."""
    items: list[object] = []
    if isinstance(flows, ModuleType):
        items = [v for v in vars(flows).values() if isinstance(v, type) and issubclass(v, Flow)]
    elif flows is not None and isinstance(flows, Iterable):
        items = list(flows)
    listed = list(given)
    found = [m for m in listed if isinstance(m, StatusModel)]
    if len(found) != len(listed):
        raise TypeError("status_models: give StatusModel instances")
    found += [m for f in items if isinstance(m := getattr(f, "status_model", None), StatusModel)]
    models: dict[str, StatusModel] = {}
    for model in found:
        if models.setdefault(model.name, model) != model:
            raise ValueError(f"two different status models are called {model.name!r}")
    return list(models.values())


class Orchestrator:
    """Flow and block definitions, validated at construction (orch_serv's constructor)."""

    def __init__(
        self,
        flows: Iterable[type[Flow] | Flow] | ModuleType | None = None,
        blocks: Iterable[type[Block] | Block] | ModuleType | None = None,
        *,
        default_flow: str | None = None,
        default_block: str | None = None,
        services: Sequence[Service] = (),
        status_models: Iterable[StatusModel] = (),
    ) -> None:
        self.registry = FlowRegistry(
            flows, blocks, default_flow=default_flow, default_block=default_block
        )
        self.status_models = _status_models(flows, status_models)
        self.services = list(services)
        for service in self.services:
            service.validate()

    def get_list_flows(self) -> list[str]:
        """Flow names in registration order."""
        return self.registry.get_list_flows()

    def get_list_blocks(self) -> list[str]:
        """Block names in registration order."""
        return self.registry.get_list_blocks()

    @asynccontextmanager
    async def attach(
        self,
        transport: Transport,
        store: RunStore,
        settings: Settings,
        *,
        with_services: bool = False,
        clock: Clock = time.time,
    ) -> AsyncIterator[Running]:
        """Run the engine (and optionally the services) on already-open backends."""
        engine = Engine(
            self.registry, transport, store, settings, clock=clock, status_models=self.status_models
        )
        workers = (
            [ServiceWorker(s, transport, settings, store=store) for s in self.services]
            if with_services
            else []
        )
        async with AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            await engine.start()
            stack.push_async_callback(engine.stop)
            yield Running(transport, store, engine, workers)

    @asynccontextmanager
    async def run(
        self,
        settings: Settings,
        *,
        with_services: bool = False,
        embedded_default: bool = False,
    ) -> AsyncIterator[Running]:
        """Connect the backends the settings name and run the engine until exit.
        ``embedded_default``: with no URLs configured, use the in-process backends."""
        async with (
            open_backends(settings, embedded_default=embedded_default) as (transport, store),
            self.attach(transport, store, settings, with_services=with_services) as running,
        ):
            yield running

    def __repr__(self) -> str:
        return f"Orchestrator(flows={self.get_list_flows()}, blocks={self.get_list_blocks()})"
