"""The engine's exactly-once advance: duplicate, old-attempt and late replies never move a run.

The test plays the service itself (reading commands off the service queue and publishing
replies by hand), so it controls exactly which replies arrive and how often.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from orch_serv.constants import EventKind, MessageKind, RunState
from orch_serv.messages.codec import decode, encode, headers_for
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests.apps.pipeline import orchestrator
from tests.conftest import AMQP_URL, eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    transport, store = backends
    async with orchestrator.attach(transport, store, settings) as running:  # no services
        yield running


class FakeService:
    """Reads commands from the `math` queue and publishes replies, by hand."""

    def __init__(self, settings: Settings, transport: RabbitTransport) -> None:
        self.settings = settings
        self.transport = transport

    async def next_command(self) -> Envelope[Any]:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(f"{self.settings.namespace}.svc.math", ensure=True)

            async def fetch() -> aio_pika.abc.AbstractIncomingMessage | None:
                return await queue.get(fail=False, no_ack=True)

            message = await eventually(fetch)
            return decode(message.body)

    async def reply(self, command: Envelope[Any], body: Any = None, **changes: Any) -> None:
        reply = Envelope[Any](
            kind=MessageKind.REPLY,
            message_id=f"{command.message_id}:reply",
            run_id=command.run_id,
            flow=command.flow,
            flow_version=command.flow_version,
            step=command.step,
            step_name=command.step_name,
            attempt=command.attempt,
            service="math",
            command=command.command,
            body=body if body is not None else command.body,
        ).model_copy(update=changes)
        await self.transport.publish(
            "orchestrator", encode(reply), message_id=reply.message_id, headers=headers_for(reply)
        )


@pytest.fixture
def service(settings: Settings, backends: tuple[RabbitTransport, RedisRunStore]) -> FakeService:
    return FakeService(settings, backends[0])


async def _events_of(running: Running, run_id: str, kind: EventKind) -> list[Any]:
    return [e for e in await running.events(run_id) if e.kind is kind]


async def test_a_reply_delivered_twice_advances_once(
    running: Running, service: FakeService
) -> None:
    run_id = await running.start("pipeline", {"n": 1})
    first = await service.next_command()
    assert first.message_id == f"{run_id}:0:1" and first.command == "one"
    await service.reply(first)
    await service.reply(first)  # the same reply again
    second = await service.next_command()
    assert second.step == 1 and second.message_id == f"{run_id}:1:1"

    async def ignored() -> list[Any]:
        return await _events_of(running, run_id, EventKind.REPLY_IGNORED)

    (event,) = await eventually(ignored)
    assert event.reason == "duplicate" and event.step == 0
    record = await running.get(run_id)
    assert (record.state, record.step) == (RunState.RUNNING, 1)
    assert len(await _events_of(running, run_id, EventKind.STEP_COMPLETED)) == 1
    assert len(await _events_of(running, run_id, EventKind.STEP_DISPATCHED)) == 2


async def test_a_reply_for_another_attempt_is_ignored(
    running: Running, service: FakeService
) -> None:
    run_id = await running.start("pipeline", {"n": 1})
    command = await service.next_command()
    await service.reply(command, attempt=2, message_id=f"{run_id}:0:2:reply")

    async def ignored() -> list[Any]:
        return await _events_of(running, run_id, EventKind.LATE_RESULT)

    (event,) = await eventually(ignored)
    assert event.reason == "stale_attempt" and event.attempt == 2
    record = await running.get(run_id)
    assert (record.state, record.step, record.attempt) == (RunState.RUNNING, 0, 1)
    await service.reply(command)  # the real reply still advances it
    assert (await service.next_command()).step == 1


async def test_a_reply_after_the_run_finished_is_recorded_and_ignored(
    running: Running, service: FakeService
) -> None:
    run_id = await running.start("pipeline", {"n": 1})
    commands = []
    for _ in range(3):
        command = await service.next_command()
        commands.append(command)
        await service.reply(command)
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    await service.reply(commands[0], message_id="late-reply")

    async def ignored() -> list[Any]:
        return await _events_of(running, run_id, EventKind.LATE_RESULT)

    (event,) = await eventually(ignored)
    assert event.reason == "run_finished"
    after = await running.get(run_id)
    assert after.state is RunState.SUCCEEDED and after.result == record.result
    assert len(await _events_of(running, run_id, EventKind.STEP_COMPLETED)) == 3


async def test_an_error_reply_fails_the_run_with_the_error(
    running: Running, service: FakeService
) -> None:
    run_id = await running.start("pipeline", {"n": 1})
    command = await service.next_command()
    error = ErrorInfo(type="DiskFull", message="no space left", retryable=True)
    await service.reply(command, error=error)
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.FAILED and record.error == error
    (failed,) = await _events_of(running, run_id, EventKind.STEP_FAILED)
    assert failed.error == error and failed.step == 0
    assert len(await _events_of(running, run_id, EventKind.RUN_FAILED)) == 1


async def test_same_key_same_run(running: Running, service: FakeService) -> None:
    first = await running.start("pipeline", {"n": 1}, key="invoice-42")
    second = await running.start("pipeline", {"n": 2}, key="invoice-42")
    assert first == second
    command = await service.next_command()
    assert command.body == {"n": 1}
    record = await running.get(first)
    assert record.key == "invoice-42" and record.input == {"n": 1}
    await service.reply(command)
    await service.next_command()  # step 1 dispatched: both starts were processed by now
    dispatched = await _events_of(running, first, EventKind.STEP_DISPATCHED)
    assert [e.step for e in dispatched] == [0, 1]
