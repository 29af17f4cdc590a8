"""Poison messages at the transport level, over the real RabbitMQ with the real consumers.

Each test publishes a bad message straight to a service queue or to the orchestrator queue
(with :mod:`tests.amqp_raw` where aio-pika itself would refuse to send it) while the real
``ServiceWorker`` and ``Engine`` consume, then asserts that the consumers are still there, that
the bad message is in the dead-letter queue with a reason, and that a real run started
afterwards succeeds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aio_pika
import orjson
import pytest

from orch_serv.backends import open_backends, open_transport
from orch_serv.constants import HEADER_BATCH, HEADER_REASON, RunState
from orch_serv.exceptions import PublishError, TransportError
from orch_serv.orchestrator.app import Running
from orch_serv.orchestrator.client import Client
from orch_serv.service.worker import ServiceWorker
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.base import DeadLetter, Delivery, Transport
from orch_serv.transport.rabbit import RabbitTransport
from orch_serv.transport.wiresafe import HEADER_CONVERTED
from tests import amqp_raw as raw
from tests.apps.pipeline import orchestrator as pipeline_app
from tests.conftest import AMQP_URL, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    transport, store = backends
    async with pipeline_app.attach(transport, store, settings, with_services=True) as running:
        yield running


@pytest.fixture
def transport(backends: tuple[RabbitTransport, RedisRunStore]) -> RabbitTransport:
    return backends[0]


def _queues(settings: Settings) -> dict[str, tuple[str, str]]:
    """queue kind -> (queue name, routing key on the main exchange)."""
    ns = settings.namespace
    return {
        "service": (f"{ns}.svc.math", "svc.math"),
        "orchestrator": (f"{ns}.orchestrator", "orchestrator"),
    }


async def consumer_count(queue: str) -> int:
    """Consumers of ``queue`` as the broker sees them (passive declare, own connection)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.consumer_count or 0)


async def letters(transport: Transport, count: int, **match: str) -> list[DeadLetter]:
    """Wait until ``count`` dead letters whose reason contains ``match['reason']`` are there."""
    needle = match.get("reason", "")

    async def found() -> list[DeadLetter]:
        got = [d for d in await transport.dead_letters(10_000) if needle in d.reason]
        return got if len(got) >= count else []

    result: list[DeadLetter] = await eventually(found, timeout=30)
    return result


async def assert_healthy(running: Running, settings: Settings) -> None:
    """Every consumer is still consuming and a real run goes through."""
    for queue, _ in _queues(settings).values():
        assert await consumer_count(queue) >= 1, f"{queue} lost its consumer"
    run_id = await running.start("pipeline", {"n": 3})
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED


# -- 1. properties pamqp cannot decode --------------------------------------------------------
UNDECODABLE = {
    "header_name": raw.properties(
        headers=raw.table([raw.field(b"\xff\xfe", b"S", raw.longstr(b"v"))])
    ),
    "content_type": raw.properties(content_type=b"\xc3\x28json"),
    "message_id": raw.properties(message_id=b"id-\xff"),
    "type": raw.properties(type_=b"\xfe"),
    "nested_too_deep": raw.properties(headers=raw.table([raw.field(b"n", b"F", raw.nested(700))])),
    "timestamp_out_of_range": raw.properties(
        headers=raw.table([raw.field(b"t", b"T", raw.int64((1 << 63) - 1))])
    ),
}


@pytest.mark.parametrize("target", ["service", "orchestrator"])
@pytest.mark.parametrize("case", sorted(UNDECODABLE))
async def test_undecodable_properties_are_dead_lettered(
    running: Running, settings: Settings, transport: RabbitTransport, case: str, target: str
) -> None:
    queue, key = _queues(settings)[target]
    async with raw.RawPublisher() as publisher:
        for _ in range(3):  # more than one: the consumer survives each
            await publisher.publish(settings.namespace, key, b'{"x": 1}', UNDECODABLE[case])
    found = await letters(transport, 3, reason="undecodable message properties")
    for letter in found:
        assert letter.origin_queue == queue
        assert letter.body == b'{"x": 1}'
        assert letter.headers["x-orch-serv-raw-properties"]  # the original bytes are kept
    await assert_healthy(running, settings)


# -- 2. headers that decode but cannot be encoded again ---------------------------------------
UNENCODABLE = {
    "non_utf8_value": raw.field(b"v", b"S", raw.longstr(b"caf\xe9")),
    "double_beyond_float32": raw.field(b"v", b"d", raw.double(1e300)),
    "small_negative_int": raw.field(b"v", b"b", b"\xfb"),
    "nested_bad_value": raw.field(
        b"v", b"F", raw.table([raw.field(b"w", b"d", raw.double(-1e200))])
    ),
    "int64_min": raw.field(b"v", b"l", raw.int64(-(1 << 63))),
}


@pytest.mark.parametrize("target", ["service", "orchestrator"])
@pytest.mark.parametrize("case", sorted(UNENCODABLE))
async def test_dead_letters_keep_headers_that_cannot_round_trip(
    running: Running, settings: Settings, transport: RabbitTransport, case: str, target: str
) -> None:
    queue, key = _queues(settings)[target]
    props = raw.properties(
        headers=raw.table([UNENCODABLE[case]]), message_id=b"bad-" + case.encode()
    )
    async with raw.RawPublisher() as publisher:
        for _ in range(3):
            await publisher.publish(settings.namespace, key, b"not json", props)
    found = await letters(transport, 3, reason="malformed JSON")
    for letter in found:
        assert letter.origin_queue == queue and letter.body == b"not json"
        assert "v" in letter.headers  # converted or kept, never dropped
        if case != "int64_min":
            assert letter.headers[HEADER_CONVERTED] == "v"
    await assert_healthy(running, settings)


async def test_an_unencodable_publish_leaves_confirms_in_step(
    running: Running, settings: Settings, transport: RabbitTransport
) -> None:
    assert isinstance(transport, RabbitTransport)
    bad: list[Mapping[str, Any]] = [{"f": 1e300}, {"i": 1 << 70}, {"b": b"\xff"}, {"n": -3}]
    for _ in range(5):
        for headers in bad:
            with pytest.raises(PublishError, match="cannot be encoded"):
                await transport.publish("svc.math", b"{}", message_id="x", headers=headers)
        with pytest.raises(PublishError, match="cannot be encoded"):
            await transport.publish("svc.math", b"{}", message_id="m" * 300)
    # every later confirm is matched to its own message
    with pytest.raises(PublishError, match="no queue is bound"):
        await transport.publish("svc.nobody", b"{}", message_id="unroutable")
    await transport.publish("svc.math", b"routable but not an envelope", message_id="routable")
    await letters(transport, 1, reason="malformed JSON")
    await assert_healthy(running, settings)


# -- 3. batches whose elements the JSON decoder cannot take -----------------------------------
class _Capture:
    """A transport stand-in that keeps what a client publishes instead of sending it."""

    def __init__(self, real: Transport) -> None:
        self.topology = real.topology
        self.sent: list[tuple[bytes, dict[str, Any]]] = []

    async def declare_orchestrator(self) -> str:
        return self.topology.orchestrator_queue

    async def publish(self, routing_key: str, body: bytes, **kw: Any) -> None:
        self.sent.append((body, dict(kw.get("headers") or {})))


@pytest.mark.parametrize("depth", [300, 5000])
async def test_a_batch_with_a_nested_element_settles_every_element(
    running: Running,
    settings: Settings,
    backends: tuple[RabbitTransport, RedisRunStore],
    transport: RabbitTransport,
    depth: int,
) -> None:
    capture = _Capture(transport)
    # a START to put in the batch (not the first command a direct start would publish)
    client = Client(capture, backends[1], direct_starts=False)  # type: ignore[arg-type]
    run_id = await client.start("pipeline", {"n": 5})
    ((start, _headers),) = capture.sent
    deep = b"[" * depth + b"]" * depth
    batch = b"[" + deep + b"," + start + b',{"message_id": "' + b"\xff" + b'"}]'
    props = raw.properties(
        headers=raw.table(
            [
                raw.field(HEADER_BATCH.encode(), b"b", b"\x03"),
                raw.field(b"x-orch-serv-protocol", b"b", b"\x01"),
            ]
        )
    )
    async with raw.RawPublisher() as publisher:
        await publisher.publish(settings.namespace, "orchestrator", batch, props)
    record = await running.wait(run_id, timeout=30)  # the good element was processed
    assert record.state is RunState.SUCCEEDED
    found = await letters(transport, 2)
    bodies = sorted(d.body for d in found if d.origin_queue.endswith(".orchestrator"))
    assert bodies == sorted([deep, b'{"message_id": "\xff"}'])
    assert all(d.reason for d in found)
    await assert_healthy(running, settings)


# -- 4. a handler that raises -----------------------------------------------------------------
#: A well-formed command of a run that does not exist (the buggy handlers below raise on it).
POISON_COMMAND = {
    "protocol": 1,
    "kind": "command",
    "message_id": "c-poison",
    "run_id": "poison",
    "flow": "pipeline",
    "flow_version": "v",
    "step": 0,
    "attempt": 1,
    "command": "one",
    "reply_to": "orchestrator",
    "created_at": 1.0,
    "body": {"n": 1},
}


async def test_a_raising_delivery_handler_is_dead_lettered_with_the_error(
    running: Running,
    settings: Settings,
    transport: RabbitTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_handle = ServiceWorker._handle

    async def buggy(self: ServiceWorker, command: Any, delivery: Delivery) -> None:
        if command.run_id == "poison":
            raise KeyError("bug in the worker")
        await real_handle(self, command, delivery)

    import orch_serv.orchestrator.engine as engine_module
    from orch_serv.messages.codec import decode as real_decode

    def buggy_decode(data: bytes, *args: Any, **kwargs: Any) -> Any:
        if data == b"engine-poison":
            raise ZeroDivisionError("bug in the engine")
        return real_decode(data, *args, **kwargs)

    monkeypatch.setattr(ServiceWorker, "_handle", buggy)
    monkeypatch.setattr(engine_module, "decode", buggy_decode)
    command = POISON_COMMAND
    for _ in range(3):
        await transport.publish("svc.math", orjson.dumps(command), message_id="c-poison")
        await transport.publish("orchestrator", b"engine-poison", message_id="e-poison")
    worker = await letters(transport, 3, reason="internal error: KeyError: 'bug in the worker'")
    engine = await letters(transport, 3, reason="internal error: ZeroDivisionError: bug in the")
    assert {d.origin_queue for d in worker} == {_queues(settings)["service"][0]}
    assert {d.origin_queue for d in engine} == {_queues(settings)["orchestrator"][0]}
    await assert_healthy(running, settings)


async def test_when_even_the_dead_letter_fails_the_broker_dead_letters_it(
    running: Running,
    settings: Settings,
    transport: RabbitTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import orch_serv.orchestrator.engine as engine_module
    from orch_serv.messages.codec import decode as real_decode

    def buggy_decode(data: bytes, *args: Any, **kwargs: Any) -> Any:
        if data == b"twice-bad":
            raise ZeroDivisionError("bug in the engine")
        return real_decode(data, *args, **kwargs)

    async def broken(delivery: Any, reason: str, *, queue: str) -> None:
        raise TransportError("the dead-letter copy failed")

    monkeypatch.setattr(engine_module, "decode", buggy_decode)
    monkeypatch.setattr(transport, "dead_letter", broken)
    await transport.publish("orchestrator", b"twice-bad", message_id="twice-bad")
    found = await letters(transport, 1, reason="rejected")
    assert found[0].body == b"twice-bad"
    assert found[0].origin_queue == _queues(settings)["orchestrator"][0]
    monkeypatch.undo()
    await assert_healthy(running, settings)


# -- 5. the broker's backstop: quorum queues with a delivery limit ----------------------------
async def test_quorum_queues_dead_letter_a_message_redelivered_past_the_limit(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"quorum_queues": True, "delivery_limit": 2})
    async with open_backends(settings) as (transport, store):
        queue = await transport.declare_service("math")
        await transport.publish("svc.math", b"kills its consumer", message_id="killer")
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            declared = await (await connection.channel()).declare_queue(queue, passive=True)
            assert declared.declaration_result.message_count == 1
            deliveries = 0
            while (stats := await transport.queue_stats(queue)) and stats.messages:
                channel = await connection.channel()  # a consumer that dies holding it
                message = await (await channel.get_queue(queue)).get(no_ack=False, fail=False)
                if message is not None:
                    deliveries += 1
                await channel.close()
                assert deliveries <= 5, "the broker kept redelivering"
        (letter,) = await letters(transport, 1, reason="delivery_limit")
        assert letter.body == b"kills its consumer" and letter.origin_queue == queue
        assert deliveries == 3  # the limit (2) was passed once
        async with pipeline_app.attach(transport, store, settings, with_services=True) as running:
            run_id = await running.start("pipeline", {"n": 1})
            assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED


# -- 7. operator helpers ----------------------------------------------------------------------
async def test_queue_stats_say_whether_a_queue_has_consumers(
    running: Running, settings: Settings, transport: RabbitTransport
) -> None:
    stats = await transport.queue_stats(_queues(settings)["service"][0])
    assert stats is not None and stats.consumers >= 1 and stats.messages == 0
    assert await transport.queue_stats(f"{settings.namespace}.svc.ghost") is None
    assert await transport.queue_stats(f"{settings.namespace}.svc.ghost") is None  # again
    await assert_healthy(running, settings)


async def test_a_read_only_transport_creates_nothing(settings: Settings) -> None:
    typo = settings.model_copy(update={"namespace": f"typo_{uuid.uuid4().hex[:8]}"})
    with pytest.raises(TransportError, match="nothing has run there"):
        await open_transport(typo, declare=False)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await (await connection.channel()).declare_queue(f"{typo.namespace}.dead", passive=True)
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await (await connection.channel()).declare_exchange(typo.namespace, passive=True)
    async with open_backends(settings):  # the namespace now exists
        pass
    reader = await open_transport(settings, declare=False)
    try:
        assert await reader.dead_letters() == []
    finally:
        await reader.close()


async def test_replay_routes_back_to_the_origin_queue_and_reports_each_failure(
    running: Running, settings: Settings, transport: RabbitTransport
) -> None:
    ns = settings.namespace
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        dlx = await channel.get_exchange(f"{ns}.dlx")
        ghost = aio_pika.Message(
            b"{}",
            message_id="ghost",
            headers={
                HEADER_REASON: "test",
                "x-orch-serv-dead-id": "ghost-letter",
                "x-orch-serv-origin-queue": f"{ns}.svc.ghost",
                "x-orch-serv-origin-routing-key": "svc.ghost",
            },
        )
        await dlx.publish(ghost, "dead")
        # through the default exchange, straight to the service queue
        await channel.default_exchange.publish(
            aio_pika.Message(b"via the default exchange", message_id="direct"), f"{ns}.svc.math"
        )
    (direct,) = await letters(transport, 1, reason="malformed JSON")
    assert direct.routing_key == f"{ns}.svc.math"
    result = await transport.replay_dead_letters(None)
    assert result.replayed == (direct.message_id,)
    assert [f.message_id for f in result.failed] == ["ghost-letter"]
    assert "svc.ghost" in result.failed[0].reason and not result.ok
    # the replayed letter reached the service queue again (and was dead-lettered again)
    again = await letters(transport, 1, reason="malformed JSON")
    assert again[0].message_id != direct.message_id and again[0].body == direct.body
    left = {d.message_id for d in await transport.dead_letters()}
    assert "ghost-letter" in left and direct.message_id not in left
    # unknown ids are told apart from known ones
    unknown = await transport.replay_dead_letters(["no-such-letter"])
    assert unknown.missing == ("no-such-letter",) and unknown.replayed == ()
    assert await transport.purge_dead_letters(["no-such-letter"]) == 0
    assert await transport.purge_dead_letters(["ghost-letter"]) == 1
    await assert_healthy(running, settings)


async def test_the_embedded_transport_settles_a_raising_handler_too(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"memory://{uuid.uuid4().hex}"
    settings = settings.model_copy(update={"amqp_url": url, "redis_url": url})
    real_handle = ServiceWorker._handle

    async def buggy(self: ServiceWorker, command: Any, delivery: Delivery) -> None:
        if command.run_id == "poison":
            raise KeyError("bug in the worker")
        await real_handle(self, command, delivery)

    monkeypatch.setattr(ServiceWorker, "_handle", buggy)
    command = POISON_COMMAND
    async with (
        open_backends(settings) as (transport, store),
        pipeline_app.attach(transport, store, settings, with_services=True) as running,
    ):
        for _ in range(3):
            await transport.publish("svc.math", orjson.dumps(command), message_id="c")
        found = await letters(transport, 3, reason="internal error: KeyError")
        assert {d.origin_queue for d in found} == {f"{settings.namespace}.svc.math"}
        stats = await transport.queue_stats(f"{settings.namespace}.svc.math")
        assert stats is not None and stats.consumers == 1
        run_id = await running.start("pipeline", {"n": 2})
        assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED
