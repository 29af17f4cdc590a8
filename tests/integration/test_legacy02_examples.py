"""The 0.2 examples over the real RabbitMQ and Redis, in this process: the bridged 0.2
orchestrators (async and sync) and the 0.2 billing service hosted by a service worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest

from flows import legacy02 as app
from orch_serv import RunState, Settings
from orch_serv.legacy02 import wire
from orch_serv.legacy02.bridge import SERVICE, Bridge, result_message
from orch_serv.transport.base import Topology
from services_examples.legacy02 import service as billing
from services_examples.legacy02.messages import Header, Order, OrderMessage
from tests.conftest import AMQP_URL, eventually

pytestmark = pytest.mark.integration

WAIT = 30.0


@pytest.fixture
async def backends(settings: Settings) -> AsyncIterator[Settings]:
    """The test's settings; afterwards the service queues the conftest does not know."""
    yield settings
    connection = await aio_pika.connect(AMQP_URL)
    try:
        channel = await connection.channel()
        for name in (SERVICE, billing.service.name):
            await channel.queue_delete(Topology(settings.namespace).service_queue(name))
    finally:
        await connection.close()


def order(quantity: int = 2, **header: str) -> OrderMessage:
    return OrderMessage(
        body=Order(order_id="int-1", item="tea", quantity=quantity, unit_price="4"),
        header=Header(**header),
    )


async def test_bridged_async_orchestrator(backends: Settings) -> None:
    app.AUDIT.clear()
    bridge = Bridge(app.orchestrator)
    async with bridge.orchestrator().run(backends, with_services=True) as running:
        run_id = await bridge.start(running, order(flow="order"))
        record = await running.wait(run_id, timeout=WAIT)
        stopped = await running.wait(
            await bridge.start(running, order(0, flow="order")), timeout=WAIT
        )
        target = await running.wait(
            await bridge.start(running, order(target="price order")), timeout=WAIT
        )
        history = [e.kind.value for e in await running.events(run_id)]
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert isinstance(result, OrderMessage)
    assert result.body.trail == ["reserved", "priced", "notified"]
    assert result.body.total_cents == 760
    assert app.AUDIT == ["int-1"]  # the post hook ran in the orchestrator
    assert history.count("step_completed") == 3
    assert stopped.state is RunState.SUCCEEDED  # the pre hook stopped the empty order
    target_result = result_message(target)
    assert target_result is not None and target_result.body.trail == ["priced"]


async def test_bridged_sync_orchestrator(backends: Settings) -> None:
    bridge = Bridge(app.sync_orchestrator)
    async with bridge.orchestrator().run(backends, with_services=True) as running:
        record = await running.wait(
            await bridge.start(running, order(flow="shipping")), timeout=WAIT
        )
    result = result_message(record)
    assert record.state is RunState.SUCCEEDED
    assert result is not None and result.body.trail == ["address checked", "shipped"]


async def test_hosted_0_2_service(backends: Settings) -> None:
    billing.RECEIPTS.clear()
    async with app.billing.run(backends, with_services=True) as running:
        record = await running.wait(
            await running.start("billing", wire.dump(order())), timeout=WAIT
        )

        async def receipt() -> bool:  # the post-processor runs after the reply's ack
            return bool(billing.RECEIPTS)

        await eventually(receipt, timeout=WAIT)
    assert record.state is RunState.SUCCEEDED
    result = result_message(record)
    assert result is not None and result.body.trail == ["charged", "refunded"]
    assert result.body.total_cents == 0
    assert billing.RECEIPTS == [{"order_id": "int-1", "cents": 760, "trail": ["charged"]}]
