"""The engine's hot path, second round (issue 16): what was made cheaper still does what the
slower code did."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Awaitable
from typing import Any, ClassVar, cast

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from structlog.contextvars import get_contextvars

from orch_serv.constants import EventKind, EventStatus
from orch_serv.logs import bound_context
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.service.runtime import tune_gc
from orch_serv.store import resp
from orch_serv.store.base import KIND_CODES, STORAGE_KEYS, Event
from orch_serv.store.pipeliner import ScriptPipeliner
from orch_serv.transport.batch_delivery import BatchState, ElementDelivery
from tests.conftest import REDIS_URL

EVENTS = [
    Event(kind=EventKind.STEP_DISPATCHED, time=1.5, step=0, attempt=1),
    Event(
        kind=EventKind.STEP_FAILED,
        time=1700000000.1234567,
        step=2,
        step_name="charge",
        attempt=3,
        status=EventStatus.FAILED,
        component="svc",
        duration_ms=12.5,
        body={"n": [1, 2.5, None]},
        error=ErrorInfo(type="Boom", message="no", retryable=True, details={"k": 1}),
        message_id="r:2:3",
        name="x",
        reason="why",
        message="text",
    ),
    Event(kind=EventKind.RUN_SUCCEEDED, time=0.0, body=0),
]


@pytest.mark.parametrize("event", EVENTS)
def test_stored_form_is_the_json_form_with_short_keys(event: Event) -> None:
    expected = {STORAGE_KEYS[k]: v for k, v in event.to_json_dict().items()}
    expected[STORAGE_KEYS["kind"]] = KIND_CODES[event.kind]
    stored = event.to_storage()
    assert stored == expected
    assert list(stored) == list(expected)  # the same JSON text, key order included
    assert Event.from_storage(1, stored).to_json_dict() == event.to_json_dict()


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "f" * 40, 2, "k:1", "k:2", "1", 0, 17.25, "", "é ünïcode"),
        ("SET", "key", b"\x00\xff bytes", -12),
        ("PING",),
    ],
)
def test_packing_matches_redis_py(args: tuple[Any, ...]) -> None:
    assert resp.pack(args) == b"".join(Connection().pack_command(*args))


@pytest.mark.parametrize("bad", [None, True, object(), [1]])
def test_packing_refuses_what_redis_py_refuses(bad: Any) -> None:
    with pytest.raises(DataError):
        resp.pack(("SET", "k", bad))


def test_direct_path_is_used_on_real_connections_only() -> None:
    from orch_serv.store.embedded import embedded_client

    assert resp.supports(aioredis.Redis())
    assert not resp.supports(embedded_client(f"memory://{uuid.uuid4().hex}"))
    assert not resp.supports(object())


async def test_batched_script_calls_answer_each_caller_in_order() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"hotpath_{uuid.uuid4().hex[:10]}"
    # a script of its own (a unique comment): not loaded yet, so the first calls get
    # NOSCRIPT and are sent again one by one, loading it
    script = client.register_script(
        f"-- {prefix}\nif ARGV[1] == 'fail' then return redis.error_reply('no way') end\n"
        "redis.call('SET', KEYS[1], ARGV[1]) return {ARGV[1], tonumber(ARGV[2])}"
    )
    pipeliner = ScriptPipeliner(client)
    try:
        for _ in range(2):  # NOSCRIPT the first time, loaded the second
            results = await asyncio.gather(
                *(pipeliner.call(script, [f"{prefix}:{i}"], [f"v{i}", i]) for i in range(5)),
                pipeliner.call(script, [f"{prefix}:x"], ["fail", 0]),
                return_exceptions=True,
            )
            assert results[:5] == [[f"v{i}", i] for i in range(5)]
            assert isinstance(results[5], ResponseError) and "no way" in str(results[5])
        assert await client.get(f"{prefix}:3") == "v3"
        # the connection is still in step: a plain command afterwards reads its own reply
        assert await cast(Awaitable[bool], client.ping()) is True
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_connection_error_reaches_every_caller() -> None:
    # nobody listens there; no retries, so that the test is quick
    client = aioredis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    script = client.register_script("return 1")
    pipeliner = ScriptPipeliner(client)
    with pytest.raises(RedisConnectionError):
        await pipeliner.call(script, ["k"], [])
    await client.aclose()


def test_bound_context_binds_and_restores() -> None:
    with bound_context(run_id="a", step=1):
        assert get_contextvars() == {"run_id": "a", "step": 1}
        with bound_context(run_id="b", attempt=2):
            assert get_contextvars() == {"run_id": "b", "step": 1, "attempt": 2}
        assert get_contextvars() == {"run_id": "a", "step": 1}
    assert get_contextvars() == {}


def test_gc_tuning_raises_the_young_threshold_only() -> None:
    before = gc.get_threshold()
    try:
        tune_gc(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
        assert gc.get_freeze_count() > 0
        with pytest.raises(ValueError, match="at least 1"):
            tune_gc(0)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


class _Parent:
    """A delivered batch message (only what the elements read)."""

    headers: ClassVar[dict[str, Any]] = {"x-orch-serv-batch": 2, "h": 1}
    redelivered = False
    routing_key = "rk"


async def test_an_acked_element_is_not_parsed_for_its_id() -> None:
    acked: list[bool] = []
    republished: list[tuple[bytes, str | None]] = []

    async def ack() -> None:
        acked.append(True)

    async def republish(body: bytes, message_id: str | None) -> None:
        republished.append((body, message_id))

    state = BatchState(2, ack, republish)
    shared = {"h": 1}
    # not JSON: parsing it for its id would give None; an ack must not even try
    first = ElementDelivery(_Parent(), state, b"not json", 0, shared)  # type: ignore[arg-type]
    second = ElementDelivery(_Parent(), state, b'{"message_id":"m2"}', 1, shared)  # type: ignore[arg-type]
    assert first.headers is second.headers is shared
    await first.ack()
    assert first._message_id is None  # never looked up
    await second.requeue()
    assert republished == [(b'{"message_id":"m2"}', "m2")]
    assert acked == [True]


def test_evalsha_packs_like_redis_py() -> None:
    for _ in range(2):  # the cached head, then again
        packed = resp.evalsha("a" * 40, ["k1", "k2"], ["x", 3, 1.5])
        expected = Connection().pack_command("EVALSHA", "a" * 40, 2, "k1", "k2", "x", 3, 1.5)
        assert packed == b"".join(expected)
