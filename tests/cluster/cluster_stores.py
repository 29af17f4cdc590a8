"""Run stores on the local Redis Cluster, each on a key prefix of its own (deleted after)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from redis.asyncio.cluster import RedisCluster

from orch_serv.store.redis import RedisRunStore
from tests.conftest import unique_name


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` on the cluster (one key at a time: slots differ)."""
    client = RedisCluster.from_url(url.replace("redis+cluster://", "redis://").split(",")[0])
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.delete(key)
    finally:
        await client.aclose()


@asynccontextmanager
async def cluster_store(
    url: str, stem: str = "cl", clock: Callable[[], float] | None = None, **options: object
) -> AsyncIterator[RedisRunStore]:
    """A run store on the cluster ``url`` names."""
    prefix = unique_name(stem)
    extra = dict(options)
    if clock is not None:
        extra["clock"] = clock
    store = await RedisRunStore.connect(url, prefix=prefix, **extra)  # type: ignore[arg-type]
    try:
        yield store
    finally:
        await store.close()
        await delete_prefix(url, prefix)
