"""Invariants with real, separate processes: SIGKILL of an orchestrator or a service in the
middle of a batch loses no run, and replicas share the work.

Processes are started with the real CLI (``orch-serv orchestrator|service APP``).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orch_serv.backends import open_backends
from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.orchestrator.client import Client
from orch_serv.settings import Settings
from tests.conftest import eventually
from tests.integration import processes as cli_processes

pytestmark = pytest.mark.integration

APP = "tests.apps.pipeline:orchestrator"


class Processes(cli_processes.Processes):
    """Pipeline processes, with the test app's handler delay and the service's prefetch."""

    def start(
        self, role: str, *, delay: float = 0.0, app: str = APP, prefetch: int = 32
    ) -> subprocess.Popen[bytes]:
        env = {"ORCH_SERV_TEST_DELAY": str(delay), "ORCH_SERV_SERVICE_PREFETCH": str(prefetch)}
        return self.spawn(role, app, env)


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(settings, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with open_backends(settings) as (transport, store):
        yield Client(transport, store)


async def _registered(client: Client) -> None:
    async def ready() -> bool:
        return await client.store.get_spec("flow", "pipeline") is not None

    await eventually(ready, timeout=60)


async def _finished_count(client: Client, run_ids: list[str]) -> int:
    records = [await client.store.get_run(r) for r in run_ids]
    return sum(1 for r in records if r is not None and r.done)


async def _check_all_succeeded(client: Client, run_ids: list[str]) -> None:
    for run_id in run_ids:
        record = await client.wait(run_id, timeout=120)
        assert record.state is RunState.SUCCEEDED, (run_id, record)
        assert record.result["trail"] == ["one", "two", "three"]
        events = await client.events(run_id)
        completed = [e.step for e in events if e.kind is EventKind.STEP_COMPLETED]
        assert completed == [0, 1, 2], (run_id, [e.kind for e in events])
        assert [e.kind for e in events].count(EventKind.RUN_SUCCEEDED) == 1


async def test_sigkill_of_the_orchestrator_mid_batch_loses_no_run(
    processes: Processes, client: Client
) -> None:
    # slow enough, even with batches of envelopes, that the kill lands mid-batch
    processes.start("service", delay=0.05, prefetch=2)
    orchestrator = processes.start("orchestrator")
    await _registered(client)
    run_ids = [await client.start("pipeline", {"n": i}) for i in range(300)]

    async def some_done() -> bool:
        return await _finished_count(client, run_ids) >= 10

    await eventually(some_done, timeout=60)
    orchestrator.send_signal(signal.SIGKILL)
    orchestrator.wait(timeout=10)
    assert await _finished_count(client, run_ids) < len(run_ids)  # killed mid-batch
    processes.start("orchestrator")
    await _check_all_succeeded(client, run_ids)


async def test_sigkill_of_a_service_mid_batch_loses_no_run(
    processes: Processes, client: Client
) -> None:
    service = processes.start("service", delay=0.05, prefetch=2)
    processes.start("orchestrator")
    await _registered(client)
    run_ids = [await client.start("pipeline", {"n": i}) for i in range(300)]

    async def some_done() -> bool:
        return await _finished_count(client, run_ids) >= 5

    await eventually(some_done, timeout=60)
    service.send_signal(signal.SIGKILL)
    service.wait(timeout=10)
    assert await _finished_count(client, run_ids) < len(run_ids)
    processes.start("service")
    await _check_all_succeeded(client, run_ids)


async def test_200_runs_across_two_services_and_two_orchestrators(
    processes: Processes, client: Client
) -> None:
    for _ in range(2):
        processes.start("service")
        processes.start("orchestrator")
    await _registered(client)
    started = time.perf_counter()
    run_ids = await asyncio.gather(*(client.start("pipeline", {"n": i}) for i in range(200)))
    await _check_all_succeeded(client, list(run_ids))
    elapsed = time.perf_counter() - started
    print(f"\n200 runs x 3 steps in {elapsed:.2f}s: {200 / elapsed:.0f} runs/s")


async def test_a_timer_whose_replica_is_killed_fires_on_the_other_exactly_once(
    processes: Processes, client: Client, settings: Settings
) -> None:
    app = "tests.apps.clocks:orchestrator"
    holder = processes.start("orchestrator", app=app)

    async def registered() -> bool:
        return await client.store.get_spec("flow", "late_dispatch") is not None

    await eventually(registered, timeout=60)
    run_id = await client.start("late_dispatch", {})

    async def dispatched() -> bool:  # the holder dispatched the step and set its timer
        return (await client.get(run_id)).phase is Phase.DISPATCHED

    await eventually(dispatched)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    processes.start("orchestrator", app=app)
    record = await client.wait(run_id, timeout=60)
    assert record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "DispatchTimeout"
    events = await client.events(run_id)
    assert [e.kind for e in events].count(EventKind.STEP_TIMED_OUT) == 1
    assert [e.kind for e in events].count(EventKind.RUN_TIMED_OUT) == 1
