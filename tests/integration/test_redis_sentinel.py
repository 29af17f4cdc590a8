"""Redis behind Sentinel (``redis+sentinel://``): runs go through the primary the Sentinel
names, and after the primary is SIGKILLed and the Sentinel promotes its replica, new runs
succeed on the new primary and the runs already finished are still there. Real processes:
a primary, a replica and a Sentinel on loopback ports, plus the default RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from orch_serv.constants import RunState
from orch_serv.exceptions import StoreError
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests.apps.pipeline import orchestrator
from tests.conftest import start_once_back
from tests.integration.cli_support import poll
from tests.integration.sentinel_support import SentinelGroup, sentinel_group

pytestmark = pytest.mark.integration


@pytest.fixture
def group() -> Iterator[SentinelGroup]:
    with sentinel_group() as started:
        yield started


async def test_the_store_follows_the_primary_through_a_failover(
    group: SentinelGroup, settings: Settings
) -> None:
    listed = settings.model_copy(update={"redis_url": group.url})
    store = await RedisRunStore.connect(group.url, prefix=settings.key_prefix, timeout=2)
    transport = await RabbitTransport.connect(settings.amqp_url or "", namespace=settings.namespace)
    try:
        async with orchestrator.attach(transport, store, listed, with_services=True) as running:
            before = await running.start("pipeline", {"n": 1})
            assert (await running.wait(before, timeout=30)).state is RunState.SUCCEEDED
            with redis.Redis(port=group.primary_port) as primary:  # the replica has it all
                assert primary.execute_command("WAIT", 1, 5000) == 1
            group.kill(group.primary_port)
            await asyncio.to_thread(
                poll, "replica promoted", lambda: group.primary() == group.replica_port
            )

            after = await start_once_back(running, {"n": 2})  # old primary's links dropping
            record = await running.wait(after, timeout=60)
            assert record.state is RunState.SUCCEEDED
            assert record.result == {"n": 2, "trail": ["one", "two", "three"]}
            assert (await running.get(before)).state is RunState.SUCCEEDED
    finally:
        await transport.close()
        await store.close()


async def test_a_sentinel_url_nobody_answers_is_a_clear_error(group: SentinelGroup) -> None:
    wrong = group.url.replace("/osk/", "/nosuchservice/").replace("://", "://:s3cret@", 1)
    with pytest.raises(StoreError) as caught:
        await RedisRunStore.connect(wrong, timeout=2)
    assert "cannot connect to Redis" in str(caught.value)
    assert "s3cret" not in str(caught.value)
