"""The metrics settings (bad values refused with a clear error), serving metrics on an
address that cannot be bound, and the API's ``/metrics`` route (token required)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from orch_serv.api import metrics_route
from orch_serv.api.app import create_app
from orch_serv.api.tokens import Scope
from orch_serv.exceptions import ConfigurationError
from orch_serv.observability import metrics
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    fresh = CollectorRegistry()
    metrics.enable(fresh)
    yield fresh
    metrics.disable()


@pytest.mark.parametrize("port", [-1, 65536, "http"])
def test_a_bad_metrics_port_is_refused(port: object) -> None:
    with pytest.raises(ValidationError, match="metrics_port"):
        Settings(metrics_port=port)


def test_an_empty_metrics_host_is_refused() -> None:
    with pytest.raises(ValidationError, match="metrics_host"):
        Settings(metrics_host="")


def test_the_metrics_port_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_SERV_METRICS_PORT", "9464")
    monkeypatch.setenv("ORCH_SERV_METRICS_HOST", "0.0.0.0")
    settings = Settings()
    assert (settings.metrics_port, settings.metrics_host) == (9464, "0.0.0.0")
    assert Settings.model_fields["metrics_port"].default is None  # off unless asked


def test_a_busy_metrics_port_is_a_configuration_error(registry: CollectorRegistry) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            metrics.serve("127.0.0.1", port, registry)


def test_metrics_are_off_until_enabled() -> None:
    metrics.disable()
    assert metrics.active() is None
    first = metrics.enable(CollectorRegistry())
    try:
        assert metrics.enable() is first  # idempotent
    finally:
        metrics.disable()


@pytest.mark.integration
async def test_the_api_serves_metrics_to_a_token_holder(
    registry: CollectorRegistry,
    backends: tuple[RabbitTransport, RedisRunStore],
    settings: Settings,
) -> None:
    transport, store = backends
    app = create_app(settings, store=store, transport=transport)
    app.include_router(metrics_route.router(app.state.ctx))
    token, _ = await (await app.state.ctx.tokens()).create("scraper", {Scope.read})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 401
        bogus = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        assert bogus.status_code == 401
        scraped = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "# TYPE orch_serv_runs_started_total counter" in scraped.text
    assert "# TYPE orch_serv_step_duration_seconds histogram" in scraped.text
