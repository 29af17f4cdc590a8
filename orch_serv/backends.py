"""Opening the transport and the store that the settings name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport


async def open_store(settings: Settings) -> RedisRunStore:
    """Connect the run store (fails fast when Redis does not answer)."""
    return await RedisRunStore.connect(
        settings.redis_url,
        prefix=settings.key_prefix,
        retention_seconds=settings.retention_seconds,
        timeout=settings.connect_timeout_seconds,
    )


async def open_transport(settings: Settings) -> RabbitTransport:
    """Connect the transport and declare the topology (fails fast)."""
    return await RabbitTransport.connect(
        settings.amqp_url,
        namespace=settings.namespace,
        quorum_queues=settings.quorum_queues,
        timeout=settings.connect_timeout_seconds,
    )


@asynccontextmanager
async def open_backends(settings: Settings) -> AsyncIterator[tuple[RabbitTransport, RedisRunStore]]:
    """Both backends, closed on exit."""
    store = await open_store(settings)
    try:
        transport = await open_transport(settings)
    except BaseException:
        await store.close()
        raise
    try:
        yield transport, store
    finally:
        await transport.close()
        await store.close()
