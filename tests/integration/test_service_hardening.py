"""The service runtime under bad input and redelivery (issue #8), on RabbitMQ and Redis:

* a command whose ``reply_to`` routes nowhere is dead-lettered after one execution, never
  re-run; a transient publish failure still gives the command back (and it is answered);
* a command of a cancelled run, or of a run that no longer exists, never starts its handler;
* a failing handler's log line carries its traceback and the run id, step, attempt, command
  and message id (also the lines a synchronous handler logs itself);
* duplicates of one command run an effect guarded by ``ctx.once`` exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from orch_serv.constants import EventKind, MessageKind, Phase, RunState
from orch_serv.exceptions import PublishError
from orch_serv.messages.codec import encode
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.app import Running
from orch_serv.service.worker import ServiceWorker
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.base import Transport
from orch_serv.transport.rabbit import RabbitTransport
from tests.apps.hardening import Probe, orchestrator, work
from tests.conftest import eventually
from tests.integration.amqp_helpers import dead_letters, queue_depth, raw_headers, take_message

pytestmark = pytest.mark.integration

CAPTURE = [structlog.contextvars.merge_contextvars]


@pytest.fixture
async def engine_only(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    """The orchestrator without its services: commands wait in the service queue."""
    Probe.reset()
    transport, store = backends
    async with orchestrator.attach(transport, store, settings) as running:
        yield running


def _transport(running: Running) -> Transport:
    """The transport of an attached orchestrator (a :class:`Running` always has one)."""
    assert running.transport is not None
    return running.transport


def _queue(running: Running) -> str:
    return _transport(running).topology.service_queue("work")


async def _queued_command(running: Running, flow: str) -> tuple[str, dict[str, Any]]:
    """Start a run of ``flow`` and take its first command off the service queue."""
    run_id = await running.start(flow, {"n": 7})
    command, _ = await take_message(_queue(running))
    assert command["run_id"] == run_id and command["kind"] == "command"
    return run_id, command


async def _send_command(running: Running, command: dict[str, Any]) -> None:
    transport = _transport(running)
    await transport.publish(
        transport.topology.service_key("work"),
        orjson.dumps(command),
        message_id=command["message_id"],
        headers=raw_headers("command"),
        kind="command",
    )


# -- 2. a reply that can never be delivered ---------------------------------------------------
async def test_unroutable_reply_to_dead_letters_the_command_after_one_run(
    engine_only: Running, settings: Settings
) -> None:
    running = engine_only
    _, command = await _queued_command(running, "act_flow")
    command["reply_to"] = "nowhere.at.all"
    await _send_command(running, command)
    worker = ServiceWorker(work, _transport(running), settings, store=running.store)
    with capture_logs(processors=CAPTURE) as logs:
        async with worker:

            async def dead() -> str | None:
                return (await dead_letters(settings.namespace)).get(command["message_id"])

            reason = await eventually(dead)
            assert "nowhere.at.all" in reason and "can never be answered" in reason
            assert await queue_depth(_queue(running)) == 0
            assert Probe.calls == 1  # ran once, was not requeued and run again
    unanswerable = [e for e in logs if e["event"] == "command_unanswerable"]
    assert len(unanswerable) == 1 and unanswerable[0]["message_id"] == command["message_id"]


class FailingOnce:
    """The real transport, except that the first reply publish fails like a broker nack."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(self, routing_key: str, body: bytes, **kwargs: Any) -> None:
        if kwargs.get("kind") == "reply" and not self.failed:
            self.failed += 1
            raise PublishError(f"publish to {routing_key!r} was not confirmed: Basic.Nack")
        await self.inner.publish(routing_key, body, **kwargs)


async def test_transient_reply_failure_requeues_the_command(
    engine_only: Running, settings: Settings
) -> None:
    running = engine_only
    transport = FailingOnce(_transport(running))
    worker = ServiceWorker(work, transport, settings, store=running.store)
    with capture_logs(processors=CAPTURE) as logs:
        async with worker:
            run_id = await running.start("act_flow", {"n": 3})
            record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    assert transport.failed == 1
    assert Probe.calls == 2  # given back after the failure, executed again, answered
    requeued = [e for e in logs if e["event"] == "command_requeued"]
    assert len(requeued) == 1 and requeued[0]["run_id"] == run_id
    assert await dead_letters(settings.namespace) == {}


# -- 3. commands that are no longer current ---------------------------------------------------
async def test_command_of_a_cancelled_run_never_starts(
    engine_only: Running, settings: Settings
) -> None:
    running = engine_only
    run_id = await running.start("act_flow", {"n": 1})

    async def dispatched() -> bool:
        record = await running.get(run_id)
        return record is not None and record.phase is Phase.DISPATCHED

    await eventually(dispatched)
    assert await eventually(lambda: queue_depth(_queue(running))) == 1
    cancelled = await running.cancel(run_id)
    assert cancelled.state is RunState.CANCELLED
    worker = ServiceWorker(work, _transport(running), settings, store=running.store)
    with capture_logs(processors=CAPTURE) as logs:
        async with worker:

            async def skipped() -> list[Any]:
                return [e for e in logs if e["event"] == "command_skipped"]

            (entry,) = await eventually(skipped)
            assert await queue_depth(_queue(running)) == 0  # consumed (acked)
    assert Probe.calls == 0
    assert entry["run_id"] == run_id and "CANCELLED" in entry["reason"]
    kinds = [e.kind for e in await running.events(run_id)]
    assert EventKind.LATE_RESULT not in kinds and EventKind.STEP_COMPLETED not in kinds
    assert await dead_letters(settings.namespace) == {}


async def test_command_of_an_old_attempt_or_unknown_run_never_starts(
    engine_only: Running, settings: Settings
) -> None:
    running = engine_only
    run_id, command = await _queued_command(running, "act_flow")
    # every command checked, however young (by default only those that may have waited are)
    always = settings.model_copy(update={"currency_check_after_seconds": 0.0})
    worker = ServiceWorker(work, _transport(running), always, store=running.store)
    with capture_logs(processors=CAPTURE) as logs:
        async with worker:
            await _send_command(running, command)  # the real one: runs, the run succeeds
            assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED
            await _send_command(running, command)  # a duplicate after the run finished
            stale = Envelope[Any].model_validate(command)
            stale.run_id, stale.message_id = "no-such-run", "no-such-run:0:1"
            transport = _transport(running)
            await transport.publish(
                transport.topology.service_key("work"),
                encode(stale),
                message_id=stale.message_id,
                headers=raw_headers(MessageKind.COMMAND.value),
                kind="command",
            )

            async def settled() -> bool:
                skipped = [e for e in logs if e["event"] == "command_skipped"]
                dead = await dead_letters(settings.namespace)
                return bool(skipped) and "no-such-run:0:1" in dead

            await eventually(settled)
    assert Probe.calls == 1
    dead = await dead_letters(settings.namespace)
    assert dead["no-such-run:0:1"].startswith("unknown run 'no-such-run'")


# -- 4. logs of a failing handler -------------------------------------------------------------
async def test_failing_handler_logs_its_traceback_and_the_delivery(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    Probe.reset()
    transport, store = backends
    with capture_logs(processors=CAPTURE) as logs:
        async with orchestrator.attach(transport, store, settings, with_services=True) as running:
            run_id = await running.start("boom_flow", {"n": 5})
            record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "RuntimeError"
    (failed,) = [e for e in logs if e["event"] == "handler_failed"]
    assert failed["log_level"] == "error"
    assert isinstance(failed["exc_info"], RuntimeError)
    rendered = structlog.processors.format_exc_info(None, "error", dict(failed))["exception"]
    assert "Traceback" in rendered and "kaboom 5" in rendered
    assert 'raise RuntimeError(f"kaboom {body.n}")' in rendered
    expected = {
        "run_id": run_id,
        "step": 0,
        "attempt": 1,
        "command": "boom",
        "message_id": f"{run_id}:0:1",
        "service": "work",
    }
    assert {k: failed[k] for k in expected} == expected
    # the handler's own line, logged from the thread pool, carries the same context
    (own,) = [e for e in logs if e["event"] == "boom_about_to_fail"]
    assert {k: own[k] for k in expected} == expected


# -- 6. idempotency of redelivered commands ---------------------------------------------------
async def test_once_runs_an_effect_once_across_duplicate_deliveries(
    engine_only: Running, settings: Settings
) -> None:
    running = engine_only
    Probe.reset(expected=2)
    run_id, command = await _queued_command(running, "guarded_flow")
    await _send_command(running, command)
    await _send_command(running, command)  # the same command delivered twice
    async with ServiceWorker(work, _transport(running), settings, store=running.store):
        record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    assert Probe.calls == 2  # at-least-once: both deliveries ran the handler ...
    assert sorted(Probe.once_results) == [False, True]  # ... once() let one through
    assert Probe.effects == 1
    assert record.result == {"n": 7, "key": command["message_id"]}
    kinds = [e.kind for e in await running.events(run_id)]
    assert kinds.count(EventKind.STEP_COMPLETED) == 1
    store = running.store
    assert isinstance(store, RedisRunStore)
    mark = store.keys.once(run_id, f"{command['message_id']}:effect")
    ttl = await store.redis.pttl(mark)
    assert 0 < ttl <= settings.once_ttl_seconds * 1000
