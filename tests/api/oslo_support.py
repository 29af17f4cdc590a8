"""What the Oslo surface tests share: the surface on a real ``orch-serv api`` subprocess
(Redis, RabbitMQ) or in process on the embedded backends, and request bodies."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from orch_serv.api.app import create_app
from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.settings import Settings
from tests.api.server import api_server

#: The seed's test example: the base64 of EXAMPLE_PATH.
EXAMPLE_PATH = "my/path/to/file (2020).xlsx"
EXAMPLE_B64 = "bXkvcGF0aC90by9maWxlICgyMDIwKS54bHN4"


@dataclass
class Surface:
    """Where the surface is served, and a token per scope."""

    url: str
    tokens: dict[Scope, str]
    transport: httpx.AsyncBaseTransport | None = None

    def client(self, scope: Scope = Scope.admin) -> httpx.AsyncClient:
        """A client of ``/status-api`` carrying a token of ``scope``."""
        return httpx.AsyncClient(
            base_url=f"{self.url}/status-api",
            headers={"Authorization": f"Bearer {self.tokens[scope]}"},
            transport=self.transport,
            timeout=30,
        )


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=["real", "embedded"])
async def surface(request: pytest.FixtureRequest) -> AsyncIterator[Surface]:
    """The surface on a real server in a subprocess, or in process on the embedded
    backends (``memory://``)."""
    if request.param == "real":
        async with api_server(stem="oslo") as server:
            yield Surface(server.url, server.tokens)
        return
    url = f"memory://oslo-{uuid.uuid4().hex}"
    settings = Settings(amqp_url=url, redis_url=url, namespace="oslo", key_prefix="oslo")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        store = await app.state.ctx.backends.store()
        tokens = TokenStore(store.redis, settings.key_prefix)
        made = {s: (await tokens.create(f"test-{s.value}", {s}))[0] for s in Scope}
        yield Surface("http://embedded", made, httpx.ASGITransport(app=app))


def new_status(**extra: Any) -> dict[str, Any]:
    """A create body with the required fields (a fresh dataset id per call)."""
    return {
        "domain": "dataset",
        "domain_id": f"my-dataset-{uuid.uuid4().hex[:8]}/1",
        "start_time": "2020-03-02T12:34:23.042400",
        "end_time": "2020-03-02T12:34:24.042400",
        "component": "data-uploader",
        **extra,
    }


def event(trace_status: str = "CONTINUE", trace_event_status: str = "OK", **extra: Any) -> Any:
    """An update body with the required fields."""
    return {
        "domain": "dataset",
        "start_time": "2020-03-02T12:35:00.000000",
        "end_time": "2020-03-02T12:35:01.000000",
        "trace_status": trace_status,
        "trace_event_status": trace_event_status,
        "component": "s3-writer",
        **extra,
    }


async def create(client: httpx.AsyncClient, **extra: Any) -> str:
    """Create a trace; its id."""
    response = await client.post("/status", json=new_status(**extra))
    assert response.status_code == 200, response.text
    trace_id: str = response.json()["trace_id"]
    return trace_id


def b64(path: str) -> str:
    """The standard base64 of a path, as the pipeline router sends it."""
    return base64.b64encode(path.encode()).decode()


def okdata_status(trace_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the okdata CLI's ``status`` command computes from GET /status/{id}
    (seed-behaviours 4.6): latest = the first FINISHED event, else the last one."""
    errors = []
    for e in events:
        for error in e.get("errors") or []:
            message = error.get("message") if isinstance(error, dict) else None
            if isinstance(message, dict) and "en" in message:
                errors.append(message["en"])
    finished = [e for e in events if e["trace_status"] == "FINISHED"]
    latest = finished[0] if finished else events[-1]
    return {
        "done": latest["trace_status"] == "FINISHED",
        "trace_id": trace_id,
        "trace_status": latest["trace_status"],
        "trace_event_status": latest["trace_event_status"],
        "errors": errors,
    }
