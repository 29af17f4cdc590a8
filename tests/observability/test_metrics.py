"""Prometheus metrics after a known set of runs (real RabbitMQ and Redis, the orchestrator
and the services in this process): the scraped counters and histogram counts match what the
runs did."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from orch_serv.constants import RunState
from orch_serv.observability import metrics
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests.conftest import eventually
from tests.observability.app import orchestrator

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    fresh = CollectorRegistry()
    metrics.enable(fresh)
    yield fresh
    metrics.disable()


@pytest.fixture
async def running(
    registry: CollectorRegistry,
    backends: tuple[RabbitTransport, RedisRunStore],
    settings: Settings,
) -> AsyncIterator[Running]:
    transport, store = backends
    async with orchestrator.attach(transport, store, settings, with_services=True) as running:
        yield running


async def scrape(port: int) -> Samples:
    """Every sample of ``http://127.0.0.1:port/metrics``, by (name, sorted labels)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_and_histograms_match_the_runs(
    running: Running, registry: CollectorRegistry, settings: Settings
) -> None:
    # the store stays the store (chart timers and status models look at its class)
    assert type(running.engine.store) is RedisRunStore
    port = metrics.serve("127.0.0.1", 0, registry)
    ok = [await running.start("obs_pipeline", {"trail": []}) for _ in range(3)]
    flaky = await running.start("obs_flaky", {})
    boom = await running.start("obs_boom", {})
    stall = await running.start("obs_stall", {})
    states = {rid: (await running.wait(rid, timeout=30)).state for rid in [*ok, flaky, boom, stall]}
    assert [states[r] for r in ok] == [RunState.SUCCEEDED] * 3
    assert states[flaky] is RunState.SUCCEEDED
    assert states[stall] is RunState.TIMED_OUT
    boom_state = states[boom]
    assert boom_state.terminal and boom_state is not RunState.SUCCEEDED
    # an undecodable message on the orchestrator queue: one dead letter
    transport = running.engine.transport
    await transport.publish(transport.topology.orchestrator_key, b"not json", message_id="junk")

    async def settled() -> Samples | None:
        samples = await scrape(port)
        # the stalled handler is cancelled by the timeout: its reply arrives late
        late = value(samples, "orch_serv_late_results_total", flow="obs_stall")
        dead = value(samples, "orch_serv_dead_letters_total", component="orchestrator")
        finished = sum(
            n for (name, _), n in samples.items() if name == "orch_serv_runs_finished_total"
        )
        return samples if late == 1 and dead == 1 and finished == 6 else None

    samples = await eventually(settled)

    def v(name: str, **labels: str) -> float:
        return value(samples, name, **labels)

    for flow, count in (("obs_pipeline", 3), ("obs_flaky", 1), ("obs_boom", 1), ("obs_stall", 1)):
        assert v("orch_serv_runs_started_total", flow=flow) == count, flow
        assert v("orch_serv_runs_in_flight", flow=flow) == 0, flow
    assert v("orch_serv_runs_finished_total", flow="obs_pipeline", state="SUCCEEDED") == 3
    assert v("orch_serv_runs_finished_total", flow="obs_flaky", state="SUCCEEDED") == 1
    assert v("orch_serv_runs_finished_total", flow="obs_boom", state=boom_state.value) == 1
    assert v("orch_serv_runs_finished_total", flow="obs_stall", state="TIMED_OUT") == 1

    for step in ("one", "two", "three"):
        assert v("orch_serv_step_attempts_total", flow="obs_pipeline", step=step) == 3
        assert v("orch_serv_step_retries_total", flow="obs_pipeline", step=step) == 0
        for hist in ("orch_serv_step_duration_seconds", "orch_serv_step_queue_wait_seconds"):
            assert v(f"{hist}_count", flow="obs_pipeline", step=step) == 3, (hist, step)
    assert v("orch_serv_step_attempts_total", flow="obs_flaky", step="flaky") == 2
    assert v("orch_serv_step_retries_total", flow="obs_flaky", step="flaky") == 1
    assert v("orch_serv_step_duration_seconds_count", flow="obs_flaky", step="flaky") == 2
    assert (
        v("orch_serv_handler_errors_total", flow="obs_flaky", step="flaky", type="RuntimeError")
        == 1
    )
    assert v("orch_serv_handler_errors_total", flow="obs_boom", step="boom", type="ValueError") == 1
    assert v("orch_serv_compensations_total", flow="obs_boom", step="reserve") == 1
    assert (
        v("orch_serv_step_timeouts_total", flow="obs_stall", step="stall", clock="execution") == 1
    )
    assert (
        v("orch_serv_handler_errors_total", flow="obs_stall", step="stall", type="Cancelled") == 1
    )
    assert v("orch_serv_late_results_total", flow="obs_pipeline") == 0
    assert v("orch_serv_dead_letters_total", component="service") == 0
    # the retry's back-off and the execution clock went through the timer loop
    assert v("orch_serv_timer_lag_seconds_count") >= 1
    assert v("orch_serv_handlers_in_progress", service="math") == 0
    # no run id in any label
    every_label = {val for (_, labels) in samples for (_, val) in labels}
    assert not every_label & {*ok, flaky, boom, stall}


async def test_metrics_off_leave_engine_and_workers_untouched(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    metrics.disable()
    transport, store = backends
    async with orchestrator.attach(transport, store, settings, with_services=True) as running:
        assert type(running.engine.store) is RedisRunStore
        assert "_route" not in vars(running.engine) and "_publish" not in vars(running.engine)
        assert all("_reply" not in vars(w) for w in running.workers)
        run_id = await running.start("obs_pipeline", {"trail": []})
        assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED
