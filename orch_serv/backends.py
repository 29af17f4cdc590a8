"""Opening the transport and the store that the settings' URLs name: ``amqp://`` and
``redis://`` for the servers, ``memory://NAME`` for the embedded in-process backends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from orch_serv.settings import Settings
from orch_serv.transport.base import Transport

if TYPE_CHECKING:  # imported when first used: `import orch_serv` loads no client library
    from orch_serv.store.redis import RedisRunStore


def is_embedded(url: str) -> bool:
    """True for a ``memory://`` URL."""
    return url.startswith("memory://")


async def open_store(
    settings: Settings, *, embedded_default: bool = False, clock: Callable[[], float] = time.time
) -> RedisRunStore:
    """Connect the run store (fails fast when Redis does not answer)."""
    from orch_serv.store.redis import RedisRunStore

    _, url = settings.urls(embedded_default=embedded_default)
    return await RedisRunStore.connect(
        url,
        prefix=settings.key_prefix,
        shards=settings.shards,
        retention_seconds=settings.retention_seconds,
        timeout=settings.connect_timeout_seconds,
        clock=clock,
    )


async def open_transport(
    settings: Settings, *, embedded_default: bool = False, declare: bool = True
) -> Transport:
    """Connect the transport and declare the topology (fails fast). With ``declare=False``
    nothing is created: the namespace must exist already (for read-only commands)."""
    url, _ = settings.urls(embedded_default=embedded_default)
    if is_embedded(url):
        from orch_serv.transport.memory import MemoryTransport

        return await MemoryTransport.connect(
            url,
            namespace=settings.namespace,
            declare=declare,
            batch_max=settings.publish_batch_max,
        )
    from orch_serv.transport.rabbit import RabbitTransport

    return await RabbitTransport.connect(
        url,
        namespace=settings.namespace,
        quorum_queues=settings.quorum_queues,
        timeout=settings.connect_timeout_seconds,
        batch_max=settings.publish_batch_max,
        delivery_limit=settings.delivery_limit,
        declare=declare,
    )


@asynccontextmanager
async def open_backends(
    settings: Settings,
    *,
    embedded_default: bool = False,
    clock: Callable[[], float] = time.time,
    declare: bool = True,
) -> AsyncIterator[tuple[Transport, RedisRunStore]]:
    """Both backends, closed on exit (``declare``: see :func:`open_transport`)."""
    store = await open_store(settings, embedded_default=embedded_default, clock=clock)
    try:
        transport = await open_transport(
            settings, embedded_default=embedded_default, declare=declare
        )
    except BaseException:
        await store.close()
        raise
    try:
        yield transport, store
    finally:
        await transport.close()
        await store.close()
