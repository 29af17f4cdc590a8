"""Shard leases in Redis: which orchestrator replica claims the timers of which shard.

Each shard has one lease key (``<prefix>:{s<n>}:owner``, in the shard's hash slot) holding
the owner's replica id, with a time to live. A replica renews the leases it holds, gives up
those it should not keep, and takes free ones; a replica that dies stops renewing, so its
shards are free again once their leases run out (:mod:`orch_serv.orchestrator.shards`
decides how many each replica holds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

from orch_serv.store.redis_base import RedisBase
from orch_serv.store.scripts import register

#: ARGV[1] owner, ARGV[2] mode (hold: renew when mine, else take when free; drop: delete
#: when mine), ARGV[3] ttl ms. Answers 1 when the owner holds the lease afterwards.
_LEASE: Final = """
local owner = redis.call('GET', KEYS[1])
if ARGV[2] == 'drop' then
  if owner == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return 0
end
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
"""


class ShardLeaseStore:
    """The lease keys of a run store's shards."""

    def __init__(self, store: RedisBase) -> None:
        self._store = store
        self._script = register(store.redis, _LEASE)

    @property
    def shards(self) -> int:
        """How many shards the store has."""
        return self._store.keys.shards

    async def hold(self, owner: str, shards: Iterable[int], ttl: float) -> frozenset[int]:
        """Renew or take the leases of ``shards`` for ``owner``; the ones it holds now."""
        wanted = list(shards)
        held = await self._each(owner, wanted, "hold", ttl)
        return frozenset(n for n, ok in zip(wanted, held, strict=True) if ok)

    async def drop(self, owner: str, shards: Iterable[int]) -> None:
        """Give up ``owner``'s leases of ``shards`` (another replica may take them at once)."""
        await self._each(owner, list(shards), "drop", 1.0)

    async def _each(self, owner: str, shards: list[int], mode: str, ttl: float) -> list[int]:
        ttl_ms = max(1, round(ttl * 1000))
        store = self._store
        calls = [
            store._pipelined(
                self._script, keys=[store.keys.of(n).owner], args=[owner, mode, ttl_ms]
            )
            for n in shards
        ]
        return [int(x) for x in await store._call("shard_leases", asyncio.gather(*calls))]


__all__ = ["ShardLeaseStore"]
