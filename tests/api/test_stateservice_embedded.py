"""The StateService surface in process, on the embedded backends (``memory://``): the seed's
session, the schema it publishes, the methods it refuses, and a Redis that does not answer
(503 naming it, never a 500)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from orch_serv.api import stateservice
from orch_serv.api.app import create_app
from orch_serv.settings import Settings
from tests.api.server import free_port
from tests.charts.test_loader import SEED


def surface(settings: Settings) -> FastAPI:
    app = create_app(settings, auth=False)
    app.mount("/stateservice", stateservice.build(app.state.ctx))
    stateservice.mount_at_root(app, app.state.ctx)
    return app


@asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = surface(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


def embedded() -> Settings:
    url = f"memory://{uuid.uuid4().hex}"
    return Settings(amqp_url=url, redis_url=url, key_prefix="ss", log_level="WARNING")


async def test_the_seed_session_on_the_embedded_store() -> None:
    async with client(embedded()) as http:
        loaded = await http.put("/stateservice/charts/states", content=SEED)
        assert loaded.status_code == 201
        session = [
            ("GET", "green_state", 200),
            ("PUT", "green_state", 200),
            ("GET", "red_state", 200),
            ("GET", "green_state", 406),
            ("PUT", "red_state", 200),
            ("GET", "blue_state", 200),
        ]
        for method, state, status in session:
            response = await http.request(method, "/state", params={"state": state})
            assert response.status_code == status, (method, state, response.text)
        machine = (await http.get("/stateservice/charts/states/machines/default")).json()
        assert (machine["state"], machine["ended"]) == ("blue_state", True)


async def test_the_schema_and_refused_methods() -> None:
    app = surface(embedded())
    sub = next(r for r in app.routes if getattr(r, "path", "") == "/stateservice")
    schema = sub.app.openapi()  # type: ignore[attr-defined]
    assert "/state" in schema["paths"] and "/charts/{chart}/machines/{machine}" in schema["paths"]
    async with client(embedded()) as http:
        for method in ("OPTIONS", "POST", "DELETE"):
            response = await http.request(method, "/state?state=a")
            assert response.status_code == 405
        assert (await http.get("/stateservice/docs")).status_code == 200


async def test_redis_down_is_503_not_500() -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    settings = Settings(
        amqp_url="memory://x", redis_url=down, connect_timeout_seconds=1, log_level="WARNING"
    )
    async with client(settings) as http:
        response = await http.get("/state", params={"state": "a"})
        assert response.status_code == 503
        assert response.text.startswith("redis is unavailable")
        response = await http.get("/stateservice/charts")
        assert response.status_code == 503
        assert response.json()["backend"] == "redis"
