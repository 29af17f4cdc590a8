"""The test kit runs the transport's batching: under concurrency the embedded broker carries
several envelopes per message, split and settled one by one, exactly as RabbitMQ does."""

from __future__ import annotations

import asyncio

from orch_serv.constants import RunState
from orch_serv.settings import Settings
from orch_serv.testing import KitFactory
from orch_serv.transport.memory import broker_for
from tests.apps.pipeline import orchestrator

RUNS = 40


async def _run_many(orch_serv_kit: KitFactory, settings: Settings | None) -> int:
    """Start RUNS pipeline runs at once, check they all succeed; the largest batch seen."""
    kit = await orch_serv_kit(orchestrator, settings=settings)
    run_ids = await asyncio.gather(*(kit.start("pipeline", {"n": i}) for i in range(RUNS)))
    records = await asyncio.gather(*(kit.wait(run_id, timeout=30) for run_id in run_ids))
    for i, record in enumerate(records):
        assert record.state is RunState.SUCCEEDED, record.error
        assert record.result == {"n": i, "trail": ["one", "two", "three"]}
    await kit.settle()
    broker = broker_for(kit.settings.amqp_url or "")
    assert broker.unacked() == 0 and broker.ready() == 0
    return broker.largest_batch


async def test_concurrent_runs_share_batch_messages_on_the_embedded_broker(
    orch_serv_kit: KitFactory,
) -> None:
    assert await _run_many(orch_serv_kit, None) > 1


async def test_publish_batch_max_one_never_batches_in_the_kit(
    orch_serv_kit: KitFactory,
) -> None:
    assert await _run_many(orch_serv_kit, Settings(publish_batch_max=1)) == 1
