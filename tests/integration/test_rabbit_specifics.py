"""What only the real RabbitMQ transport does: fail fast on the first connect, and batch
concurrent publishes into one AMQP message whose envelopes are settled one by one."""

from __future__ import annotations

import asyncio

import pytest

from orch_serv.exceptions import TransportError
from orch_serv.settings import Settings
from orch_serv.transport.base import Delivery
from orch_serv.transport.batching import ElementDelivery
from orch_serv.transport.rabbit import RabbitTransport
from tests.conftest import AMQP_URL

pytestmark = pytest.mark.integration


async def test_connect_fails_fast_with_a_clear_error() -> None:
    with pytest.raises(TransportError, match="cannot connect to RabbitMQ"):
        await RabbitTransport.connect("amqp://guest:guest@127.0.0.1:1/", timeout=2)


async def test_concurrent_publishes_travel_as_a_batch_and_settle_one_by_one(
    settings: Settings,
) -> None:
    transport = await RabbitTransport.connect(AMQP_URL, namespace=settings.namespace)
    try:
        queue = await transport.declare_service("math")
        seen: asyncio.Queue[tuple[bytes, bool, bool]] = asyncio.Queue()

        async def handler(delivery: Delivery) -> None:
            batched = isinstance(delivery, ElementDelivery)
            await seen.put((delivery.body, delivery.redelivered, batched))
            if delivery.body == b'{"n":3}' and not delivery.redelivered:
                await delivery.requeue()  # given back out of a batch: comes back on its own
            else:
                await delivery.ack()

        await asyncio.gather(
            *(transport.publish("svc.math", b'{"n":%d}' % i, message_id=f"m{i}") for i in range(10))
        )
        await transport.consume(queue, handler, prefetch=1)
        got = [await asyncio.wait_for(seen.get(), 10) for _ in range(11)]
        first = [g for g in got if g[0] != b'{"n":3}' or not g[1]]
        assert all(batched for _, _, batched in first)  # all ten arrived in one batch
        (again,) = [g for g in got if g[0] == b'{"n":3}' and g[1]]
        assert again == (b'{"n":3}', True, False)  # alone, and flagged redelivered
        assert sorted(g[0] for g in got) == sorted(
            [b'{"n":%d}' % i for i in range(10)] + [b'{"n":3}']
        )
    finally:
        await transport.close()
