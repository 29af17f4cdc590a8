"""Spans in one process, collected by an in-memory exporter: retries, timers, failures and
compensations are traced under the run's root; traceparent values are parsed strictly; and
with tracing off nothing is imported or instrumented."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from orch_serv.constants import RunState
from orch_serv.observability import tracing
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests.conftest import eventually
from tests.observability.app import orchestrator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.enable(provider)
    yield memory
    tracing.disable()
    provider.shutdown()


@pytest.fixture
async def running(
    exporter: InMemorySpanExporter,
    backends: tuple[RabbitTransport, RedisRunStore],
    settings: Settings,
) -> AsyncIterator[Running]:
    transport, store = backends
    async with orchestrator.attach(transport, store, settings, with_services=True) as running:
        yield running


def _of_run(exporter: InMemorySpanExporter, run_id: str) -> list[ReadableSpan]:
    trace_id = tracing.run_ids(run_id)[0]
    return [
        s
        for s in exporter.get_finished_spans()
        if s.context is not None and s.context.trace_id == trace_id
    ]


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@pytest.mark.integration
async def test_a_retry_goes_through_a_timer_under_the_root(
    running: Running, exporter: InMemorySpanExporter
) -> None:
    run_id = await running.start("obs_flaky", {})
    assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED
    root_id = tracing.run_ids(run_id)[1]

    async def replied() -> list[ReadableSpan] | None:
        spans = _of_run(exporter, run_id)
        return spans if len(spans) >= 8 else None  # the timer's span ends after its dispatch

    spans = await eventually(replied)
    names = sorted(s.name for s in spans)
    assert names == sorted(
        ["run obs_flaky", "timer retry"]
        + ["dispatch flaky", "execute work.flaky", "reply flaky"] * 2
    )
    dispatches = sorted(
        (s for s in spans if s.name == "dispatch flaky"),
        key=lambda s: (s.attributes or {})["orch_serv.attempt"],
    )
    assert [_parent(d) for d in dispatches] == [root_id, root_id]
    (timer,) = [s for s in spans if s.name == "timer retry"]
    assert _parent(timer) == root_id
    executes = {_parent(s): s for s in spans if s.name == "execute work.flaky"}
    first = executes[dispatches[0].context.span_id]
    assert first.status.status_code is StatusCode.ERROR
    assert [e.name for e in first.events] == ["exception"]
    assert (first.events[0].attributes or {})["exception.type"] == "RuntimeError"
    second = executes[dispatches[1].context.span_id]
    assert second.status.status_code is StatusCode.UNSET


@pytest.mark.integration
async def test_a_compensation_is_dispatched_under_the_root(
    running: Running, exporter: InMemorySpanExporter
) -> None:
    run_id = await running.start("obs_boom", {})
    assert (await running.wait(run_id, timeout=30)).state is RunState.COMPENSATED

    async def undone() -> list[ReadableSpan] | None:
        spans = _of_run(exporter, run_id)
        return (
            spans
            if any(s.name == "reply reserve" and _lane(s) == "compensate" for s in spans)
            else None
        )

    spans = await eventually(undone)
    root_id = tracing.run_ids(run_id)[1]
    dispatched = [(s.name, _lane(s)) for s in spans if s.name.startswith("dispatch")]
    assert sorted(dispatched) == [
        ("dispatch boom", "run"),
        ("dispatch reserve", "compensate"),
        ("dispatch reserve", "run"),
    ]
    assert all(_parent(s) == root_id for s in spans if s.name.startswith("dispatch"))
    (failed,) = [s for s in spans if s.name == "execute work.boom"]
    assert failed.status.status_code is StatusCode.ERROR


@pytest.mark.integration
async def test_a_run_started_inside_a_span_links_to_it(
    running: Running, exporter: InMemorySpanExporter
) -> None:
    tracer = tracing.active()
    assert tracer is not None
    with tracer.start_as_current_span("caller") as caller:
        run_id = await running.start("obs_pipeline", {"trail": []})
    assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED

    async def rooted() -> list[ReadableSpan] | None:
        return [s for s in _of_run(exporter, run_id) if s.name == "run obs_pipeline"] or None

    (root,) = await eventually(rooted)
    assert root.parent is None  # the run has a trace of its own...
    linked = [link.context for link in root.links]
    assert [(c.trace_id, c.span_id) for c in linked] == [  # ...that the caller's points to
        (caller.get_span_context().trace_id, caller.get_span_context().span_id)
    ]


def _lane(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get("orch_serv.lane"))


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # unknown version
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",  # not hex
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    ],
)
def test_a_malformed_traceparent_is_ignored(value: str | None) -> None:
    assert tracing.parse_traceparent(value) is None


def test_a_traceparent_round_trips() -> None:
    value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    context = tracing.parse_traceparent(value)
    assert context is not None and context.is_remote
    assert tracing.format_traceparent(context) == value


def test_a_run_has_a_fixed_trace_id() -> None:
    trace_id, span_id = tracing.run_ids("run-1")
    assert (trace_id, span_id) == tracing.run_ids("run-1") != tracing.run_ids("run-2")
    assert 0 < trace_id < 2**128 and 0 < span_id < 2**64
    assert tracing.trace_id_hex("run-1") == f"{trace_id:032x}"


def test_a_reply_from_another_trace_hangs_under_the_root() -> None:
    foreign = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    from opentelemetry.trace import get_current_span

    span = get_current_span(tracing.parent_context("run-1", foreign)).get_span_context()
    assert (span.trace_id, span.span_id) == tracing.run_ids("run-1")


def test_the_endpoint_variables_turn_tracing_on() -> None:
    assert not tracing.endpoint_configured({})
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"})
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"})
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}
    assert not tracing.endpoint_configured(disabled)


def test_with_everything_off_nothing_is_imported() -> None:
    """An engine and a worker made with metrics and tracing off load neither prometheus-client
    nor OpenTelemetry's tracing SDK nor the instrumentation (a fresh interpreter, the embedded
    backends). (redis-py imports parts of OpenTelemetry on its own when they are installed.)"""
    code = """
import asyncio, sys
from orch_serv.backends import open_backends
from orch_serv.settings import Settings
from tests.apps.pipeline import orchestrator

async def main():
    settings = Settings(amqp_url="memory://off", redis_url="memory://off")
    async with open_backends(settings) as (transport, store):
        async with orchestrator.attach(transport, store, settings, with_services=True) as r:
            run_id = await r.start("pipeline", {"n": 1})
            assert (await r.wait(run_id, timeout=30)).state.value == "SUCCEEDED"
    watched = ("prometheus_client", "opentelemetry.sdk.trace",
               "orch_serv.observability.engine_hooks", "orch_serv.observability.worker_hooks")
    print("LOADED", sorted(m for m in watched if m in sys.modules))

asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ORCH_SERV_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout.splitlines(), done.stdout


def test_a_ratio_sampler_keeps_or_drops_whole_runs() -> None:
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import get_current_span

    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.5)))
    tracing.enable(provider)
    try:
        kept = dropped = 0
        for n in range(64):
            run_id = f"run-{n}"
            flags = get_current_span(tracing.root_context(run_id)).get_span_context().trace_flags
            root = tracing.start_root("run x", run_id, None, {})
            assert root.is_recording() is flags.sampled  # the root and the steps agree
            assert tracing.sampled(run_id) is flags.sampled  # no span at all when not
            root.end()
            kept, dropped = kept + flags.sampled, dropped + (not flags.sampled)
        assert kept and dropped
    finally:
        tracing.disable()
        provider.shutdown()
