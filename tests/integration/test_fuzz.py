"""Fuzzing the consumers with malformed AMQP messages while real runs go on.

A bounded corpus, generated from a fixed seed (so a failure replays exactly), of bad bodies,
bad JSON, bad headers, bad properties, bad batches and envelopes with absurd values is
published straight to the service queue and to the orchestrator queue (through
:mod:`tests.amqp_raw`, which can send what aio-pika refuses to), interleaved with real runs.
Then: every consumer is still consuming, every real run SUCCEEDED, every bad message whose
fate is certain is in the dead-letter queue with a reason (counted), and nothing is left
unsettled (once the consumers close, their unacked messages would be back in the queues).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import aio_pika
import orjson
import pytest

from orch_serv.constants import HEADER_BATCH, RunState
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests import amqp_raw as raw
from tests.apps.pipeline import orchestrator as pipeline_app
from tests.conftest import AMQP_URL, eventually

pytestmark = pytest.mark.integration

SEED = 8
JSON = b"application/json"


@dataclass(frozen=True)
class Bad:
    """One malformed message and what must become of it."""

    kind: str
    body: bytes
    properties: bytes
    letters: int | None  #: dead letters it certainly makes; None: settled, fate not fixed


def _batch_props() -> bytes:
    return raw.properties(headers=raw.table([raw.field(HEADER_BATCH.encode(), b"b", b"\x02")]))


def corpus(rng: random.Random, size: int) -> list[Bad]:
    """``size`` malformed messages of every kind, drawn from ``rng``."""
    makers = [_bad_body, _bad_json, _bad_headers, _bad_properties, _bad_batch, _absurd_envelope]
    return [makers[i % len(makers)](rng) for i in range(size)]


def _bad_body(rng: random.Random) -> Bad:
    return Bad("bytes", rng.randbytes(rng.randint(0, 64)), raw.properties(), 1)


def _bad_json(rng: random.Random) -> Bad:
    depth = rng.randint(300, 3000)
    body = rng.choice(
        [
            b'{"protocol": 1, "kind": ',
            b"[" * depth + b"]" * depth,
            b'{"a": ' * depth + b"1" + b"}" * depth,
            b'{"protocol": 1, "kind": "reply", "x": NaN}',
            b'{"message_id": "\xc3\x28"}',
            b"",
            b"null",
            orjson.dumps(rng.random()),
        ]
    )
    return Bad("json", body, raw.properties(), 1)


def _bad_headers(rng: random.Random) -> Bad:
    value = rng.choice(
        [
            (b"S", raw.longstr(rng.randbytes(8) + b"\xff")),
            (b"d", raw.double(rng.choice([1e300, -1e250, 3.5e38 * 10]))),
            (b"b", bytes([rng.randint(128, 255)])),  # -128..-1
            (b"l", raw.int64(-(1 << 63))),
            (b"F", raw.table([raw.field(b"in", b"d", raw.double(1e308))])),
        ]
    )
    headers = raw.table([raw.field(b"x-fuzz", *value), raw.field(b"x-orch-serv-protocol", *value)])
    return Bad("headers", b"not an envelope", raw.properties(headers=headers), 1)


def _bad_properties(rng: random.Random) -> Bad:
    choice = rng.randrange(5)
    junk = b"\xff" + rng.randbytes(4)
    props = [
        raw.properties(content_type=junk),
        raw.properties(message_id=junk),
        raw.properties(type_=junk),
        raw.properties(headers=raw.table([raw.field(junk, b"S", raw.longstr(b"v"))])),
        raw.properties(headers=raw.table([raw.field(b"n", b"F", raw.nested(800))])),
    ][choice]
    return Bad("properties", b'{"protocol": 1}', props, 1)


def _bad_batch(rng: random.Random) -> Bad:
    depth = rng.randint(260, 2000)  # past orjson's limits: to encode (254), to decode (1024)
    deep = b"[" * depth + b"]" * depth
    elements = [deep, b'{"message_id": "m", "kind": 7}', b"[1, 2]", b'"text"', b"12"]
    body = b"[" + b",".join(rng.sample(elements, 2)) + b"]"
    return Bad("batch", body, _batch_props(), 2)  # one letter per element


def _absurd_envelope(rng: random.Random) -> Bad:
    envelope = {
        "protocol": 1,
        "kind": rng.choice(["reply", "command", "status", "heartbeat", "start"]),
        "message_id": f"fuzz-{rng.getrandbits(32)}",
        "run_id": f"fuzz{rng.getrandbits(40)}",
        "flow": "pipeline",
        "flow_version": "v",
        "step": rng.choice([-1, 0, 1 << 40]),
        "attempt": rng.choice([0, 1 << 64, -5]),
        "created_at": rng.choice([1e308, -1.0, 0.0]),
        "command": "one",
        "reply_to": "orchestrator",
        "body": {"n": rng.randint(-(10**30), 10**30)},
    }
    return Bad("envelope", json.dumps(envelope).encode(), raw.properties(), None)


async def _queue_depth(queue: str) -> tuple[int, int]:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        declared = await (await connection.channel()).declare_queue(queue, passive=True)
        result = declared.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)


async def test_fuzzed_messages_never_stop_the_consumers(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    transport, store = backends
    rng = random.Random(SEED)
    bad = corpus(rng, 90)
    ns = settings.namespace
    queues = {"svc.math": f"{ns}.svc.math", "orchestrator": f"{ns}.orchestrator"}
    async with pipeline_app.attach(transport, store, settings, with_services=True) as running:
        runs = [await running.start("pipeline", {"n": i}) for i in range(5)]
        async with raw.RawPublisher() as publisher:
            for i, item in enumerate(bad):
                for key in queues:  # every queue kind gets every bad message
                    await publisher.publish(ns, key, item.body, item.properties)
                if i % 15 == 0:  # real runs start all along
                    runs.append(await running.start("pipeline", {"n": 100 + i}))
        for run_id in runs:
            record = await running.wait(run_id, timeout=30)
            assert record.state is RunState.SUCCEEDED, (run_id, record.error)
        for queue in queues.values():
            assert (await _queue_depth(queue))[1] >= 1, f"{queue} lost its consumer"
        certain = sum(2 * b.letters for b in bad if b.letters is not None)
        settled_later = sum(1 for b in bad if b.letters is None)

        async def drained() -> bool:
            depths = [(await _queue_depth(q))[0] for q in queues.values()]
            return not any(depths) and (await _queue_depth(f"{ns}.dead"))[0] >= certain

        assert await eventually(drained, timeout=40)
    # the consumers are closed: whatever they left unsettled is back in its queue
    for queue in queues.values():
        assert (await _queue_depth(queue))[0] == 0, f"{queue} had unsettled messages"
    letters = await transport.dead_letters(100_000)
    assert all(d.reason for d in letters)
    # an absurd envelope is dead-lettered or answered (an answer may be dead-lettered once)
    assert certain <= len(letters) <= certain + 2 * settled_later
    kinds = {b.kind for b in bad}
    assert kinds == {"bytes", "json", "headers", "properties", "batch", "envelope"}


FLOOD = 1000


async def test_a_flood_of_bad_messages_does_not_fill_the_prefetch_window(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    """1,000 bad messages of each kind (undecodable properties, headers that cannot be sent
    again, malformed JSON, an unsplittable batch) on both queues, and real runs still flow."""
    transport, store = backends
    ns = settings.namespace
    kinds = [
        (b"{}", raw.properties(content_type=b"\xff")),
        (b"x", raw.properties(headers=raw.table([raw.field(b"d", b"d", raw.double(1e300))]))),
        (b"{", raw.properties()),
        (b"[" + b"[" * 300 + b"," + b"]" * 300 + b"]", _batch_props()),
    ]
    async with pipeline_app.attach(transport, store, settings, with_services=True) as running:
        async with raw.RawPublisher() as publisher:
            for i, (body, props) in enumerate(kinds):
                key = "svc.math" if i % 2 == 0 else "orchestrator"
                await publisher.publish_many((ns, key, body, props) for _ in range(FLOOD))
                run_id = await running.start("pipeline", {"n": i})
                record = await running.wait(run_id, timeout=40)
                assert record.state is RunState.SUCCEEDED

        async def all_dead() -> bool:
            return (await _queue_depth(f"{ns}.dead"))[0] >= len(kinds) * FLOOD

        assert await eventually(all_dead, timeout=40)
    for queue in (f"{ns}.svc.math", f"{ns}.orchestrator"):
        assert (await _queue_depth(queue))[0] == 0
    assert (await _queue_depth(f"{ns}.dead"))[0] == len(kinds) * FLOOD
    sample = await transport.dead_letters(200)
    assert all(d.reason for d in sample)


def test_the_corpus_is_reproducible() -> None:
    assert corpus(random.Random(SEED), 30) == corpus(random.Random(SEED), 30)
