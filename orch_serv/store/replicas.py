"""Which orchestrator replicas serve a namespace, and with which flows: a Redis hash per AMQP
namespace, one field per replica, refreshed while the replica runs.

The hash is keyed by the AMQP namespace, not by the Redis key prefix, because what two apps
share when they collide is the namespace's queues (two key prefixes would not see each other's
runs, yet their orchestrators would still take each other's messages). It expires on its own
when no replica refreshes it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orch_serv.exceptions import StoreError
from orch_serv.store.replica import Replica


class RedisReplicas:
    """The replicas of one namespace, in one Redis hash."""

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self._redis = client
        self.key = f"orch_serv:namespace:{namespace}:replicas"

    async def announce(self, replica: Replica, *, ttl: float) -> None:
        """Record (or refresh) ``replica``; the hash lives ``ttl`` seconds past the last one."""
        data = {
            "names": sorted(replica.names),
            "host": replica.host,
            "pid": replica.pid,
            "seen": replica.seen,
        }
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hset(self.key, replica.replica_id, orjson.dumps(data).decode())
            pipe.pexpire(self.key, max(1, int(ttl * 1000)))
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis announce failed: {exc}") from exc

    async def withdraw(self, replica_id: str) -> None:
        """Forget a replica that stops."""
        try:
            await cast(Awaitable[int], self._redis.hdel(self.key, replica_id))
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis withdraw failed: {exc}") from exc

    async def live(self, *, now: float, seen_after: float) -> list[Replica]:
        """Replicas seen since ``seen_after`` (older entries are removed)."""
        try:
            raw = await cast(Awaitable[dict[Any, Any]], self._redis.hgetall(self.key))
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis replicas failed: {exc}") from exc
        found: list[Replica] = []
        stale: list[str] = []
        for field, value in raw.items():
            replica_id = field.decode() if isinstance(field, bytes) else str(field)
            try:
                data = orjson.loads(value)
                replica = Replica(
                    replica_id=replica_id,
                    names=frozenset(str(n) for n in data["names"]),
                    host=str(data["host"]),
                    pid=int(data["pid"]),
                    seen=float(data["seen"]),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                stale.append(replica_id)  # unreadable: written by something else; drop it
                continue
            if replica.seen < seen_after or replica.seen > now + 3600:
                stale.append(replica_id)
            else:
                found.append(replica)
        if stale:
            try:
                await cast(Awaitable[int], self._redis.hdel(self.key, *stale))
            except (RedisError, OSError) as exc:
                raise StoreError(f"redis replicas cleanup failed: {exc}") from exc
        return found


__all__ = ["RedisReplicas"]
