"""Flows end to end in one process on the real backends: services, hooks, targets, defaults,
bad input at every edge, and graceful drain of a service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from pydantic import BaseModel

from orch_serv import (
    Block,
    Envelope,
    Flow,
    FlowBlock,
    FlowBuilder,
    HandlerContext,
    NonRetryableError,
    Orchestrator,
    Service,
)
from orch_serv.constants import HEADER_REASON, EventKind, MessageKind, RunState
from orch_serv.messages.codec import encode, headers_for
from orch_serv.orchestrator.app import Running
from orch_serv.service.worker import ServiceWorker
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
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


async def _dead_letters(settings: Settings) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(AMQP_URL)
    found = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{settings.namespace}.dead", ensure=True)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
    return found


def _kinds(events: list[Any]) -> list[EventKind]:
    return [e.kind for e in events]


async def test_a_flow_runs_every_step_in_order(running: Running) -> None:
    run_id = await running.start("pipeline", {"n": 7})
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"n": 7, "trail": ["one", "two", "three"]}
    assert record.input == {"n": 7} and record.statuses == frozenset({"one_done"})
    events = await running.events(run_id)
    kinds = _kinds(events)
    assert kinds[:3] == [EventKind.RUN_CREATED, EventKind.RUN_STARTED, EventKind.STEP_DISPATCHED]
    assert kinds.count(EventKind.STEP_COMPLETED) == 3 and kinds[-1] is EventKind.RUN_SUCCEEDED
    completed = [e for e in events if e.kind is EventKind.STEP_COMPLETED]
    assert [(e.step, e.step_name, e.component) for e in completed] == [
        (0, "one", "math"),
        (1, "two", "math"),
        (2, "three", "math"),
    ]
    assert all(e.duration_ms is not None and e.duration_ms >= 0 for e in completed)
    (status,) = [e for e in events if e.kind is EventKind.STATUS]
    assert status.name == "one_done" and status.body == {
        "files_incoming": [],
        "files_outgoing": ["7"],
    }


async def test_a_single_block_target_runs_alone(running: Running) -> None:
    run_id = await running.start(target="two", body={"n": 1})
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED and record.kind == "block"
    assert record.result == {"n": 1, "trail": ["two"]}


async def test_unknown_flow_is_a_clear_error(running: Running) -> None:
    from orch_serv.exceptions import FlowNotFound

    with pytest.raises(FlowNotFound, match="unknown flow 'nope': registered flows: 'pipeline'"):
        await running.start("nope", {})


async def test_body_failing_validation_fails_the_run_then_the_next_run_succeeds(
    running: Running,
) -> None:
    bad = await running.start("pipeline", {"n": "not a number"})
    record = await running.wait(bad, timeout=30)
    assert record.state is RunState.FAILED and record.error is not None
    assert record.error.type == "ValidationError" and not record.error.retryable
    assert record.error.details and record.error.details["errors"][0]["loc"] == ["n"]
    good = await running.start("pipeline", {"n": 1})
    assert (await running.wait(good, timeout=30)).state is RunState.SUCCEEDED


async def _publish_raw(
    transport: RabbitTransport, key: str, body: bytes, headers: dict[str, Any] | None = None
) -> None:
    await transport.publish(key, body, message_id="raw", headers=headers)


async def test_malformed_messages_are_dead_lettered_and_consumers_go_on(
    running: Running, backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    transport, _ = backends
    await _publish_raw(transport, "svc.math", b"{this is not json")
    await _publish_raw(transport, "orchestrator", b"[1, 2, 3]")
    await _publish_raw(transport, "orchestrator", b"{}", headers={"x-orch-serv-protocol": 99})
    oversized = b'{"kind":"reply","message_id":"m","run_id":"r","body":"' + b"x" * 9_000_000 + b'"}'
    await _publish_raw(transport, "orchestrator", oversized)
    ghost = Envelope[Any](
        kind=MessageKind.REPLY,
        message_id="g",
        run_id="no-such-run",
        flow="pipeline",
        flow_version=pipeline_app.registry.specs()[0].version,
    )
    await transport.publish(
        "orchestrator", encode(ghost), message_id="g", headers=headers_for(ghost)
    )
    # the consumers keep going:
    good = await running.start("pipeline", {"n": 2})
    assert (await running.wait(good, timeout=30)).state is RunState.SUCCEEDED

    async def five() -> list[Any]:
        found.extend(await _dead_letters(settings))
        return found if len(found) >= 5 else []

    found: list[Any] = []
    dead = await eventually(five)
    reasons = sorted(m.headers[HEADER_REASON] for m in dead)
    assert any(r.startswith("malformed JSON") for r in reasons)
    assert any(r.startswith("invalid envelope") for r in reasons)
    assert any(r.startswith("unsupported protocol version 99") for r in reasons)
    assert any("exceeds the limit" in r for r in reasons)
    assert "unknown run 'no-such-run'" in reasons
    by_reason = {m.headers[HEADER_REASON]: m for m in dead}
    malformed = next(m for r, m in by_reason.items() if r.startswith("malformed"))
    assert malformed.body == b"{this is not json"  # kept as it was, nothing lost


async def test_unknown_command_gets_an_error_reply(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    class Ghost(Block):
        name_block = "ghost"
        service = "math"
        command = "does_not_exist"

    app = Orchestrator(blocks=[Ghost], services=pipeline_app.services)
    transport, store = backends
    async with app.attach(transport, store, settings, with_services=True) as running:
        run_id = await running.start(target="ghost", body={"n": 1})
        record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.FAILED and record.error is not None
    assert record.error.type == "UnknownCommand" and "does_not_exist" in record.error.message
    assert not record.error.retryable


class Doc(BaseModel):
    text: str


hooks_service = Service("other")


@hooks_service.command("upper")
def upper(body: Doc) -> Doc:
    if body.text == "boom":
        raise NonRetryableError("cannot shout boom", type="Refused")
    return Doc(text=body.text.upper())


class Upper(Block):
    name_block = "upper"
    service = "other"


class Hooked(Flow):
    name_flow = "hooked"
    steps_flow = FlowBuilder(
        FlowBlock(Upper, pre_handler_function="stop_on_skip"),
        FlowBlock(Upper, post_handler_function="exclaim", pre_handler_function="check"),
    )

    def stop_on_skip(self, message: Envelope[Any]) -> Envelope[Any] | None:
        return None if message.body.get("text") == "skip" else message

    async def exclaim(self, message: Envelope[Any]) -> Envelope[Any]:
        message.body = {"text": message.body["text"] + "!"}
        return message

    def check(self, message: Envelope[Any]) -> Envelope[Any]:
        if message.body["text"] == "EXPLODE":
            raise RuntimeError("hook exploded")
        assert message.get_source() == "upper_0"
        return message


hooked_app = Orchestrator(flows=[Hooked], default_flow="hooked", services=[hooks_service])


@pytest.fixture
async def hooked(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    transport, store = backends
    async with hooked_app.attach(transport, store, settings, with_services=True) as running:
        yield running


async def test_hooks_change_and_stop_runs(hooked: Running) -> None:
    ok = await hooked.start("hooked", {"text": "hi"})
    record = await hooked.wait(ok, timeout=30)
    assert record.state is RunState.SUCCEEDED and record.result == {"text": "HI!"}

    stopped = await hooked.start("hooked", {"text": "skip"})
    record = await hooked.wait(stopped, timeout=30)
    assert record.state is RunState.SUCCEEDED and record.result == {"text": "skip"}
    assert EventKind.RUN_STOPPED in _kinds(await hooked.events(stopped))

    exploded = await hooked.start("hooked", {"text": "explode"})
    record = await hooked.wait(exploded, timeout=30)
    assert record.state is RunState.FAILED and record.error is not None
    assert record.error.type == "HookError" and "hook exploded" in record.error.message


async def test_default_flow_and_typed_handler_errors(hooked: Running) -> None:
    run_id = await hooked.start(None, {"text": "boom"})  # no flow named: the default flow
    record = await hooked.wait(run_id, timeout=30)
    assert record.flow == "hooked" and record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "Refused"
    assert record.error.message == "cannot shout boom" and not record.error.retryable


class Gate:
    """Lets a test hold a handler inside its work (fresh events per test and loop)."""

    entered: asyncio.Event
    release: asyncio.Event

    @classmethod
    def reset(cls) -> None:
        cls.entered = asyncio.Event()
        cls.release = asyncio.Event()


slow_service = Service("math")


@slow_service.command("one")
async def slow_one(body: dict[str, Any], ctx: HandlerContext) -> dict[str, Any]:
    Gate.entered.set()
    await Gate.release.wait()
    return {**body, "slow": True}


async def test_stop_drains_in_flight_handlers_before_closing(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    transport, store = backends
    Gate.reset()
    async with pipeline_app.attach(transport, store, settings) as running:  # engine only
        worker = ServiceWorker(slow_service, transport, settings)
        await worker.start()
        first = await running.start("pipeline", {"n": 1})
        await asyncio.wait_for(Gate.entered.wait(), 30)
        stopping = asyncio.create_task(worker.stop(grace=30))
        Gate.release.set()
        await asyncio.wait_for(stopping, 30)

        # No other worker serves 'one': the run can only advance if stop() let the
        # in-flight handler finish and reply (a cancelled handler would requeue it).
        async def advanced() -> bool:
            return (await running.get(first)).step >= 1

        assert await eventually(advanced)


async def test_grace_timeout_leaves_the_command_for_another_worker(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    transport, store = backends
    Gate.reset()
    async with pipeline_app.attach(transport, store, settings) as running:
        stuck = ServiceWorker(slow_service, transport, settings)
        await stuck.start()
        run_id = await running.start("pipeline", {"n": 3})
        await asyncio.wait_for(Gate.entered.wait(), 30)
        await stuck.stop(grace=0.05)  # handler cancelled, command not acked
        # a new worker on a new connection gets the redelivered command
        fresh = await RabbitTransport.connect(AMQP_URL, namespace=settings.namespace)
        try:
            async with ServiceWorker(pipeline_app.services[0], fresh, settings):
                record = await running.wait(run_id, timeout=30)
        finally:
            await fresh.close()
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"n": 3, "trail": ["one", "two", "three"]}
