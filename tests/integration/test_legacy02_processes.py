"""A 0.2 program goes distributed with only the ``orch-serv`` commands: the unchanged
``flows.legacy02:orchestrator`` served by ``orch-serv orchestrator`` and its blocks run by
``orch-serv service`` processes over RabbitMQ and Redis, surviving a SIGKILL of the service
mid-run; and the 0.2 billing service hosted by ``orch-serv service``."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest

from flows import legacy02 as app
from orch_serv import Orchestrator, RunState, Settings
from orch_serv.backends import open_backends
from orch_serv.constants import EventKind
from orch_serv.legacy02 import wire
from orch_serv.legacy02.bridge import SERVICE, Bridge, result_message
from orch_serv.orchestrator.client import Client
from orch_serv.transport.base import Topology
from services_examples.legacy02 import service as billing
from services_examples.legacy02.messages import Header, Order, OrderMessage
from tests.conftest import AMQP_URL, eventually
from tests.integration import processes as cli_processes

pytestmark = pytest.mark.integration

APP = "flows.legacy02:orchestrator"


class Processes(cli_processes.Processes):
    """The 0.2 app's processes: two commands in a service's hands at a time (one command per
    AMQP message), with a simulated stock latency of ``work`` seconds."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        super().__init__(
            settings,
            log_dir,
            {"ORCH_SERV_SERVICE_PREFETCH": "2", "ORCH_SERV_PUBLISH_BATCH_MAX": "1"},
        )

    def start(self, role: str, app: str = APP, work: float = 0.0) -> subprocess.Popen[bytes]:
        return self.spawn(role, app, {"LEGACY02_WORK_SECONDS": str(work)})


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(settings, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with open_backends(settings) as (transport, store):
        yield Client(transport, store)
    connection = await aio_pika.connect(AMQP_URL)  # queues the conftest does not know
    try:
        channel = await connection.channel()
        for name in (SERVICE, billing.service.name):
            await channel.queue_delete(Topology(settings.namespace).service_queue(name))
    finally:
        await connection.close()


def order(n: int, **header: str) -> OrderMessage:
    return OrderMessage(
        body=Order(order_id=f"o-{n}", item="tea", quantity=1 + n % 3, unit_price="1.20"),
        header=Header(**header),
    )


async def _done(client: Client, run_ids: list[str]) -> int:
    records = [await client.store.get_run(r) for r in run_ids]
    return sum(1 for r in records if r is not None and r.done)


async def test_sigkill_of_the_service_mid_run_loses_no_0_2_run(
    processes: Processes, client: Client
) -> None:
    # Each step takes 0.2 s and the service holds two commands at a time: the second wave of
    # 50 runs needs at least 15 s of work, so the kill right after it lands mid-run.
    service = processes.start("service", work=0.2)
    processes.start("orchestrator")

    async def registered() -> bool:
        return await client.store.get_spec("flow", "order") is not None

    await eventually(registered, timeout=60)
    bridge = Bridge(app.orchestrator)  # the same object the processes loaded
    run_ids = [await bridge.start(client, order(n, flow="order")) for n in range(10)]

    async def some_done() -> bool:
        return await _done(client, run_ids) >= 5

    await eventually(some_done, timeout=60)
    run_ids += [await bridge.start(client, order(n, flow="order")) for n in range(10, 60)]
    service.send_signal(signal.SIGKILL)
    service.wait(timeout=10)
    assert await _done(client, run_ids) < len(run_ids)  # killed mid-run
    processes.start("service")
    for n, run_id in enumerate(run_ids):
        record = await client.wait(run_id, timeout=120)
        assert record.state is RunState.SUCCEEDED, (run_id, record)
        result = result_message(record)
        assert isinstance(result, OrderMessage)  # rebuilt with the user's class
        assert result.body.trail == ["reserved", "priced", "notified"]
        assert result.body.total_cents == (1 + n % 3) * 120 * 95 // 100
        assert result.get_source() == "notify customer"
        events = await client.events(run_id)
        completed = [e.step for e in events if e.kind is EventKind.STEP_COMPLETED]
        assert completed == [0, 1, 2]


async def test_0_2_service_hosted_by_orch_serv_service(
    processes: Processes, client: Client, settings: Settings
) -> None:
    processes.start("service", app="services_examples.legacy02.service:service")
    engine_only = Orchestrator(flows=[app.Billing])  # the flow; the service is the process
    async with engine_only.run(settings) as running:
        run_id = await running.start("billing", wire.dump(order(1)))
        record = await running.wait(run_id, timeout=60)
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert isinstance(result, OrderMessage)
    assert result.body.trail == ["charged", "refunded"]
    assert result.body.total_cents == 0  # the swap scope of the hosted service
