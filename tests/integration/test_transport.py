"""The RabbitMQ transport against a real broker: confirms, acks, redelivery, dead letters."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from orch_serv.constants import HEADER_ORIGIN_QUEUE, HEADER_REASON
from orch_serv.exceptions import PublishError, TransportError
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.base import Delivery
from orch_serv.transport.rabbit import RabbitTransport
from tests.conftest import AMQP_URL

pytestmark = pytest.mark.integration


async def _dead_letters(settings: Settings) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(AMQP_URL)
    found = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{settings.namespace}.dead", ensure=True)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
    return found


async def test_publish_consume_ack(backends: tuple[RabbitTransport, RedisRunStore]) -> None:
    transport, _ = backends
    queue = await transport.declare_service("math")
    assert await transport.declare_service("math") == queue  # idempotent
    got: asyncio.Queue[Delivery] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        await got.put(delivery)
        await delivery.ack()

    consumer = await transport.consume(queue, handler, prefetch=4)
    await transport.publish("svc.math", b'{"x":1}', message_id="m1", headers={"h": "v"})
    delivery = await asyncio.wait_for(got.get(), 10)
    assert delivery.body == b'{"x":1}' and delivery.headers["h"] == "v"
    assert not delivery.redelivered and delivery.routing_key == "svc.math"
    await consumer.cancel()
    await consumer.cancel()  # idempotent


async def test_unroutable_publish_raises(backends: tuple[RabbitTransport, RedisRunStore]) -> None:
    transport, _ = backends
    with pytest.raises(PublishError, match="no queue is bound"):
        await transport.publish("svc.ghost", b"{}", message_id="m1")


async def test_consuming_an_undeclared_queue_is_an_error(
    backends: tuple[RabbitTransport, RedisRunStore],
) -> None:
    transport, _ = backends

    async def handler(delivery: Delivery) -> None:
        raise AssertionError("never called")

    with pytest.raises(TransportError, match="must be declared"):
        await transport.consume("nope", handler, prefetch=1)


async def test_unacked_message_is_redelivered_to_the_next_consumer(settings: Settings) -> None:
    first = await RabbitTransport.connect(AMQP_URL, namespace=settings.namespace)
    queue = await first.declare_service("math")
    held: asyncio.Queue[Delivery] = asyncio.Queue()

    async def hold(delivery: Delivery) -> None:
        await held.put(delivery)  # never acked: the process "dies" with it

    await first.consume(queue, hold, prefetch=1)
    await first.publish("svc.math", b"payload", message_id="m1")
    await asyncio.wait_for(held.get(), 10)
    await first.close()

    second = await RabbitTransport.connect(AMQP_URL, namespace=settings.namespace)
    await second.declare_service("math")
    again: asyncio.Queue[Delivery] = asyncio.Queue()

    async def take(delivery: Delivery) -> None:
        await again.put(delivery)
        await delivery.ack()

    await second.consume(queue, take, prefetch=1)
    delivery = await asyncio.wait_for(again.get(), 10)
    assert delivery.body == b"payload" and delivery.redelivered
    await second.close()


async def test_dead_letter_keeps_the_message_and_its_reason(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    transport, _ = backends
    queue = await transport.declare_service("math")
    done = asyncio.Event()

    async def reject(delivery: Delivery) -> None:
        await transport.dead_letter(delivery, "malformed JSON: broken", queue=queue)
        done.set()

    await transport.consume(queue, reject, prefetch=1)
    await transport.publish("svc.math", b"{not json", message_id="bad", headers={"a": 1})
    await asyncio.wait_for(done.wait(), 10)
    dead = await _dead_letters(settings)
    assert len(dead) == 1
    assert dead[0].body == b"{not json"
    assert dead[0].headers[HEADER_REASON] == "malformed JSON: broken"
    assert dead[0].headers[HEADER_ORIGIN_QUEUE] == queue
    assert dead[0].headers["a"] == 1


async def test_connect_fails_fast_with_a_clear_error() -> None:
    with pytest.raises(TransportError, match="cannot connect to RabbitMQ"):
        await RabbitTransport.connect("amqp://guest:guest@127.0.0.1:1/", timeout=2)
