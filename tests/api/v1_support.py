"""What the ``/v1`` tests share: a real ``orch-serv api`` subprocess plus an in-process
orchestrator (with its services) on the server's namespace and key prefix, so the API has
flows to start and runs to serve; and small helpers to wait for runs through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator
from orch_serv.api.tokens import Scope
from orch_serv.orchestrator.app import Running
from tests.api.server import ApiServer, api_server
from tests.apps.failing import ForeverFlow, SometimesFlow, flaky
from tests.apps.pipeline import Pipeline, Two, math
from tests.conftest import eventually

#: A run id no run has.
UNKNOWN_RUN = "no-such-run-0000"


class Stuck(Block):
    """A block of a service no process hosts: its command waits in the queue for ever."""

    name_block = "stuck"
    service = "nobody"


class StuckFlow(Flow):
    """A flow whose only step nobody consumes (the run shows what it waits for)."""

    name_flow = "stuck"
    steps_flow = FlowBuilder(FlowBlock(Stuck))


#: pipeline (3 steps), sometimes (fails until a marker exists), forever (until cancelled),
#: stuck (never consumed); the block ``two`` runs alone.
ORCHESTRATOR = Orchestrator(
    flows=[Pipeline, SometimesFlow, ForeverFlow, StuckFlow], blocks=[Two], services=[math, flaky]
)
FLOWS = ["forever", "pipeline", "sometimes", "stuck"]


@dataclass
class V1:
    """The server and the orchestrator serving its namespace."""

    server: ApiServer
    running: Running

    def client(self, scope: Scope | None = Scope.admin) -> httpx.AsyncClient:
        """An HTTP client of the server carrying a token of ``scope``."""
        return self.server.client(scope)


@asynccontextmanager
async def serve_v1(env: dict[str, str] | None = None, stem: str = "v1") -> AsyncIterator[V1]:
    """``orch-serv api`` with ``env`` and an orchestrator on its namespace."""
    async with api_server(env=env, stem=stem) as server:
        settings = server.settings.model_copy(
            update={"shutdown_grace_seconds": 5, "log_level": "WARNING"}
        )
        async with ORCHESTRATOR.run(settings, with_services=True) as running:
            yield V1(server, running)


async def start(client: httpx.AsyncClient, flow: str, body: Any = None, **extra: Any) -> str:
    """Start a run over the API; its id."""
    response = await client.post("/v1/runs", json={"flow": flow, "body": body, **extra})
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


async def finished(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    """The run's status document once it is finished (polled over the API)."""

    async def done() -> dict[str, Any] | None:
        document: dict[str, Any] = (await client.get(f"/v1/runs/{run_id}")).json()
        return document if document["done"] else None

    result: dict[str, Any] = await eventually(done)
    return result


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem document of ``response``, checked to be one with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    document: dict[str, Any] = response.json()
    assert document["status"] == status and document["detail"]
    return document
