"""The transport contract (embedded broker and RabbitMQ): routing, confirms, acks,
redelivery, dead letters, control notices."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orch_serv.constants import HEADER_ORIGIN_QUEUE, HEADER_REASON
from orch_serv.exceptions import PublishError, TransportError
from orch_serv.transport.base import Delivery, Transport
from tests.conftest import eventually
from tests.contract.conftest import TransportFactory


async def test_publish_consume_ack(transport: Transport) -> None:
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


async def test_unroutable_publish_raises(transport: Transport) -> None:
    with pytest.raises(PublishError, match="no queue is bound"):
        await transport.publish("svc.ghost", b"{}", message_id="m1")


async def test_consuming_an_undeclared_queue_is_an_error(transport: Transport) -> None:

    async def handler(delivery: Delivery) -> None:
        raise AssertionError("never called")

    with pytest.raises(TransportError, match="must be declared"):
        await transport.consume("nope", handler, prefetch=1)


async def test_unacked_message_is_redelivered_to_the_next_consumer(
    transport_factory: TransportFactory,
) -> None:
    first = await transport_factory()
    queue = await first.declare_service("math")
    held: asyncio.Queue[Delivery] = asyncio.Queue()

    async def hold(delivery: Delivery) -> None:
        await held.put(delivery)  # never acked: the process "dies" with it

    await first.consume(queue, hold, prefetch=1)
    await first.publish("svc.math", b"payload", message_id="m1")
    await asyncio.wait_for(held.get(), 10)
    await first.close()

    second = await transport_factory()
    await second.declare_service("math")
    again: asyncio.Queue[Delivery] = asyncio.Queue()

    async def take(delivery: Delivery) -> None:
        await again.put(delivery)
        await delivery.ack()

    await second.consume(queue, take, prefetch=1)
    delivery = await asyncio.wait_for(again.get(), 10)
    assert delivery.body == b"payload" and delivery.redelivered
    await second.close()


async def test_dead_letter_keeps_the_message_and_its_reason(transport: Transport) -> None:
    queue = await transport.declare_service("math")
    done = asyncio.Event()

    async def reject(delivery: Delivery) -> None:
        await transport.dead_letter(delivery, "malformed JSON: broken", queue=queue)
        done.set()

    await transport.consume(queue, reject, prefetch=1)
    await transport.publish("svc.math", b"{not json", message_id="bad", headers={"a": 1})
    await asyncio.wait_for(done.wait(), 10)
    dead = await transport.dead_letters()
    assert len(dead) == 1
    assert dead[0].body == b"{not json" and dead[0].reason == "malformed JSON: broken"
    assert dead[0].origin_queue == queue and dead[0].routing_key == "svc.math"
    assert dead[0].headers[HEADER_REASON] == "malformed JSON: broken"
    assert dead[0].headers[HEADER_ORIGIN_QUEUE] == queue
    assert dead[0].headers["a"] == 1
    assert len(await transport.dead_letters()) == 1  # looking does not remove


async def test_dead_letters_replay_and_purge(transport: Transport) -> None:
    queue = await transport.declare_service("math")
    got: asyncio.Queue[bytes] = asyncio.Queue()
    bad = {b"first", b"second"}

    async def handler(delivery: Delivery) -> None:
        if delivery.body in bad:
            await transport.dead_letter(delivery, "rejected", queue=queue)
        else:
            await got.put(delivery.body)
            await delivery.ack()

    await transport.consume(queue, handler, prefetch=1)
    await transport.publish("svc.math", b"first", message_id="m1")
    await transport.publish("svc.math", b"second", message_id="m2")

    async def two() -> list[Any]:
        letters = await transport.dead_letters()
        return letters if len(letters) == 2 else []

    first, second = await eventually(two)
    bad.discard(b"first")  # fixed: replaying it now succeeds
    replayed = await transport.replay_dead_letters([first.message_id])
    assert replayed.replayed == (first.message_id,) and replayed.ok
    assert await asyncio.wait_for(got.get(), 10) == b"first"
    (left,) = await transport.dead_letters()
    assert left.message_id == second.message_id
    assert await transport.purge_dead_letters() == 1
    assert await transport.dead_letters() == []


async def test_control_notices_reach_every_subscriber(
    transport_factory: TransportFactory,
) -> None:
    one, two = await transport_factory(), await transport_factory()
    inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue(), asyncio.Queue()]
    for transport, inbox in zip((one, two), inboxes, strict=True):

        async def take(delivery: Delivery, inbox: asyncio.Queue[bytes] = inbox) -> None:
            await delivery.ack()
            await inbox.put(delivery.body)

        await transport.consume_control(take)
    await one.publish_control(b"cancel run 7", message_id="c1")
    for inbox in inboxes:
        assert await asyncio.wait_for(inbox.get(), 10) == b"cancel run 7"


async def test_requeued_message_comes_back_flagged(transport: Transport) -> None:
    queue = await transport.declare_service("math")
    seen: asyncio.Queue[Delivery] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        await seen.put(delivery)
        if not delivery.redelivered:
            await delivery.requeue()
        else:
            await delivery.ack()

    await transport.consume(queue, handler, prefetch=1)
    await transport.publish("svc.math", b"x", message_id="m1")
    first = await asyncio.wait_for(seen.get(), 10)
    second = await asyncio.wait_for(seen.get(), 10)
    assert (first.redelivered, second.redelivered) == (False, True)
    assert second.message_id == "m1"


async def test_control_notices_are_settled_whatever_the_handler_does(
    transport: Transport,
) -> None:
    """A notice handler that raises or leaves the notice unsettled never stalls the control
    consumer: every notice ends up acked, on both transports (more notices than the embedded
    control queue's prefetch of 64)."""
    seen: asyncio.Queue[bytes] = asyncio.Queue()

    async def careless(delivery: Delivery) -> None:
        await seen.put(delivery.body)
        if delivery.body.endswith(b"0"):
            raise RuntimeError("handler bug")  # and never settles the others either

    await transport.consume_control(careless)
    for i in range(100):
        await transport.publish_control(b"notice %d" % i, message_id=f"c{i}")
    got = {await asyncio.wait_for(seen.get(), 10) for _ in range(100)}
    assert got == {b"notice %d" % i for i in range(100)}
