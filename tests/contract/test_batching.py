"""Batching is a transport feature both backends share (embedded broker and RabbitMQ):
concurrent publishes to one routing key travel as one AMQP message, whose envelopes are
delivered and settled one by one, behind the same poison guards."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from orch_serv.constants import HEADER_BATCH, HEADER_REASON
from orch_serv.transport.base import DeadLetter, Delivery, Transport
from orch_serv.transport.batching import ElementDelivery
from orch_serv.transport.guard import HEADER_UNDECODABLE
from tests.conftest import eventually
from tests.contract.conftest import TransportFactory


def _envelope(message_id: str, n: int) -> bytes:
    return orjson.dumps({"message_id": message_id, "n": n})


async def _ready(transport: Transport, queue: str, count: int) -> bool:
    """True once ``queue`` holds exactly ``count`` AMQP messages ready for delivery."""
    stats = await transport.queue_stats(queue)
    return stats is not None and stats.messages == count


async def _letters(transport: Transport, count: int) -> list[DeadLetter]:
    async def enough() -> list[DeadLetter]:
        letters = await transport.dead_letters()
        return letters if len(letters) >= count else []

    return list(await eventually(enough, timeout=15))


async def test_concurrent_publishes_are_one_message_whose_elements_settle_alone(
    transport: Transport,
) -> None:
    queue = await transport.declare_service("math")
    bodies = [_envelope(f"e{i}", i) for i in range(4)]
    await asyncio.gather(
        *(
            transport.publish("svc.math", body, message_id=f"e{i}", headers={"h": "v"})
            for i, body in enumerate(bodies)
        )
    )
    await eventually(lambda: _ready(transport, queue, 1), timeout=15)  # four envelopes, one message

    seen: asyncio.Queue[tuple[str | None, bool, bool, dict[str, Any]]] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        message_id = delivery.message_id
        batched = isinstance(delivery, ElementDelivery)
        await seen.put((message_id, delivery.redelivered, batched, dict(delivery.headers)))
        if message_id == "e1":
            await transport.dead_letter(delivery, "bad element", queue=queue)
        elif message_id == "e2" and not delivery.redelivered:
            await delivery.requeue()  # given back: comes back alone, flagged redelivered
        elif message_id == "e3":
            raise RuntimeError("handler bug")  # the guard dead-letters this element alone
        else:
            await delivery.ack()

    # prefetch 1: the given-back e2 can only arrive once the batch message itself is settled
    await transport.consume(queue, handler, prefetch=1)
    got = [await asyncio.wait_for(seen.get(), 15) for _ in range(5)]
    first, (again,) = got[:4], got[4:]
    assert sorted(g[0] or "" for g in first) == ["e0", "e1", "e2", "e3"]
    assert all(batched and not redelivered for _, redelivered, batched, _ in first)
    assert all(h == {"h": "v"} for *_, h in first)  # the batch marker is not an element's
    assert again[:3] == ("e2", True, False)  # alone, flagged redelivered
    assert HEADER_BATCH not in again[3] and again[3]["h"] == "v"

    letters = sorted(await _letters(transport, 2), key=lambda d: d.body)
    assert [d.body for d in letters] == [bodies[1], bodies[3]]  # each element alone
    assert letters[0].reason == "bad element"
    assert letters[1].reason.startswith("internal error: RuntimeError: handler bug")
    assert all(HEADER_BATCH not in d.headers and d.origin_queue == queue for d in letters)
    assert await _ready(transport, queue, 0)


async def test_publish_batch_max_one_never_batches(transport_factory: TransportFactory) -> None:
    transport = await transport_factory(batch_max=1)
    queue = await transport.declare_service("math")
    await asyncio.gather(
        *(
            transport.publish("svc.math", _envelope(f"e{i}", i), message_id=f"e{i}")
            for i in range(5)
        )
    )
    await eventually(lambda: _ready(transport, queue, 5), timeout=15)  # five messages
    seen: asyncio.Queue[tuple[str | None, bool]] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        await seen.put((delivery.message_id, HEADER_BATCH in delivery.headers))
        await delivery.ack()

    await transport.consume(queue, handler, prefetch=5)
    got = [await asyncio.wait_for(seen.get(), 15) for _ in range(5)]
    assert sorted(got) == [(f"e{i}", False) for i in range(5)]


async def test_a_long_first_message_id_does_not_fail_its_batch(transport: Transport) -> None:
    """A message id of 250 bytes is fine alone; ``batch:{id}:{n}`` would not fit an AMQP short
    string, and used to fail every publish of the batch."""
    queue = await transport.declare_service("math")
    ids = [f"{i}" + "x" * 249 for i in range(3)]
    await asyncio.gather(
        *(
            transport.publish("svc.math", _envelope(message_id, i), message_id=message_id)
            for i, message_id in enumerate(ids)
        )
    )
    await eventually(lambda: _ready(transport, queue, 1), timeout=15)
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        await seen.put(delivery.message_id or "")
        await delivery.ack()

    await transport.consume(queue, handler, prefetch=1)
    assert sorted([await asyncio.wait_for(seen.get(), 15) for _ in range(3)]) == sorted(ids)


async def test_a_batch_the_decoder_cannot_parse_is_split_byte_for_byte(
    transport: Transport,
) -> None:
    """Elements orjson refuses (nested too deep, not UTF-8) are each dead-lettered on their
    own, byte for byte, while the good element is handled."""
    queue = await transport.declare_service("math")
    deep = b"[" * 2000 + b"]" * 2000  # past orjson's nesting limit
    good = _envelope("good", 1)
    not_utf8 = b'{"message_id": "\xff"}'
    batch = b"[" + deep + b"," + good + b"," + not_utf8 + b"]"
    handled: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(delivery: Delivery) -> None:
        try:
            orjson.loads(delivery.body)
        except orjson.JSONDecodeError as exc:
            await transport.dead_letter(delivery, f"malformed JSON: {exc}", queue=queue)
            return
        await handled.put(delivery.body)
        await delivery.ack()

    await transport.consume(queue, handler, prefetch=1)
    await transport.publish("svc.math", batch, message_id="raw", headers={HEADER_BATCH: 3})
    assert await asyncio.wait_for(handled.get(), 15) == good
    letters = await _letters(transport, 2)
    assert sorted(d.body for d in letters) == sorted([deep, not_utf8])
    assert all(d.reason.startswith("malformed JSON") for d in letters)
    await eventually(lambda: _ready(transport, queue, 0), timeout=15)


async def test_a_message_marked_undecodable_never_reaches_the_handler(
    transport: Transport,
) -> None:
    queue = await transport.declare_service("math")

    async def handler(delivery: Delivery) -> None:
        raise AssertionError("the guard dead-letters it first")

    await transport.consume(queue, handler, prefetch=1)
    headers = {HEADER_UNDECODABLE: "undecodable message properties: test"}
    await transport.publish("svc.math", b"{}", message_id="u1", headers=headers)
    (letter,) = await _letters(transport, 1)
    assert letter.body == b"{}" and letter.origin_queue == queue
    assert letter.headers[HEADER_REASON] == "undecodable message properties: test"
