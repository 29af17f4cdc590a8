"""One trace per run across real processes: an orchestrator and a service started with the
CLI, exporting over OTLP/HTTP to a collector in this process; a 3-step run yields one trace
whose spans nest as docs/observability.md describes. The same processes serve their metrics
at ``metrics_port``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orch_serv.backends import open_backends
from orch_serv.constants import RunState
from orch_serv.exceptions import FlowNotFound
from orch_serv.observability.tracing import run_ids
from orch_serv.orchestrator.client import Client
from orch_serv.settings import Settings
from tests.conftest import AMQP_URL, REDIS_URL, eventually
from tests.observability.app import USER_SPAN
from tests.observability.collector import Collector, Received

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "orch-serv")
APP = "tests.observability.app:orchestrator"
#: A span of the caller that started the run (linked from the run's root span).
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
PRODUCER, CONSUMER = 4, 5  # OTLP span kinds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def collector() -> Iterator[Collector]:
    with Collector().running() as running:
        yield running


@pytest.fixture
def processes(settings: Settings, collector: Collector, tmp_path: Path) -> Iterator[dict[str, int]]:
    """An orchestrator and a service process; yields their metrics ports by role."""
    ports = {"orchestrator": free_port(), "service": free_port()}
    started: list[subprocess.Popen[bytes]] = []
    for role, port in ports.items():
        env = {
            **os.environ,
            "ORCH_SERV_AMQP_URL": AMQP_URL,
            "ORCH_SERV_REDIS_URL": REDIS_URL,
            "ORCH_SERV_NAMESPACE": settings.namespace,
            "ORCH_SERV_KEY_PREFIX": settings.key_prefix,
            "ORCH_SERV_LOG_LEVEL": "WARNING",
            "ORCH_SERV_METRICS_PORT": str(port),
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "PYTHONPATH": str(ROOT),
        }
        env.pop("OTEL_SERVICE_NAME", None)
        with open(tmp_path / f"{role}.log", "wb") as log:
            started.append(
                subprocess.Popen([CLI, role, APP], cwd=ROOT, env=env, stdout=log, stderr=log)
            )
    yield ports
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _start(client: Client) -> str | None:
    try:
        return await client.start("obs_pipeline", {"trail": []}, traceparent=CALLER)
    except FlowNotFound:  # the orchestrator has not published its flows yet
        return None


def _one(spans: list[Received], name: str, step: int | None = None) -> Received:
    found = [
        s
        for s in spans
        if s.name == name and (step is None or s.attributes.get("orch_serv.step") == step)
    ]
    assert len(found) == 1, (name, step, [s.name for s in spans])
    return found[0]


async def _scrape(port: int) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    return response.text


async def test_a_three_step_run_is_one_trace_of_nested_spans(
    settings: Settings, collector: Collector, processes: dict[str, int]
) -> None:
    async with open_backends(settings) as (transport, store):
        client = Client(transport, store)
        run_id = await eventually(lambda: _start(client))
        record = await client.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    trace_id = f"{run_ids(run_id)[0]:032x}"
    root_id = f"{run_ids(run_id)[1]:016x}"

    async def complete() -> list[Received] | None:
        spans = [s for s in collector.received() if s.trace_id == trace_id]
        return spans if len(spans) >= 13 else None  # root + 3 x (dispatch, execute, reply, user)

    spans = await eventually(complete)
    assert len(spans) == 13, [s.name for s in spans]
    assert len({s.span_id for s in spans}) == 13

    root = _one(spans, "run obs_pipeline")
    assert (root.span_id, root.parent_span_id) == (root_id, "")
    assert root.service == "orch-serv-orchestrator"
    assert root.attributes["orch_serv.run_id"] == run_id
    assert root.links == (("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),)

    for step, name in enumerate(("one", "two", "three")):
        dispatch = _one(spans, f"dispatch {name}", step)
        execute = _one(spans, f"execute math.{name}", step)
        reply = _one(spans, f"reply {name}", step)
        user = [s for s in spans if s.name == USER_SPAN and s.attributes["step"] == name]
        assert dispatch.parent_span_id == root.span_id
        assert (dispatch.kind, dispatch.service) == (PRODUCER, "orch-serv-orchestrator")
        assert execute.parent_span_id == dispatch.span_id
        assert (execute.kind, execute.service) == (CONSUMER, "orch-serv-service")
        assert reply.parent_span_id == dispatch.span_id
        assert (reply.kind, reply.service) == (CONSUMER, "orch-serv-orchestrator")
        assert [u.parent_span_id for u in user] == [execute.span_id]  # the handler's own span

    orchestrator_metrics = await _scrape(processes["orchestrator"])
    assert 'orch_serv_runs_started_total{flow="obs_pipeline"} 1.0' in orchestrator_metrics
    assert (
        'orch_serv_runs_finished_total{flow="obs_pipeline",state="SUCCEEDED"} 1.0'
        in orchestrator_metrics
    )
    service_metrics = await _scrape(processes["service"])
    for name in ("one", "two", "three"):
        assert (
            f'orch_serv_step_duration_seconds_count{{flow="obs_pipeline",step="{name}"}} 1.0'
            in service_metrics
        )
