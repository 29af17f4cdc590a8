"""Which shards' timers this orchestrator replica claims (docs/architecture.md, "Shards").

Replicas divide the shards between them by lease (:mod:`orch_serv.store.leases`): each holds
about ``shards / live replicas`` of them, renews its leases every third of their time to
live, gives up the ones beyond its share (a replica that joins then gets its part) and takes
free ones, so a dead replica's shards go to the others once its leases run out.

Leases spread the work; they are not what makes a timer fire once. Each due timer is still
claimed with its own lease in one Lua call, so two replicas that both believe they hold a
shard (a Redis failover lost a lease) claim its timers turn about, never twice at once.
"""

from __future__ import annotations

import contextlib
import math
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from orch_serv.exceptions import StoreError
from orch_serv.logs import get_logger
from orch_serv.store.keys import shard_of

if TYPE_CHECKING:  # loads redis: imported when first used
    from orch_serv.orchestrator.presence import Presence
    from orch_serv.store.leases import ShardLeaseStore

log = get_logger("shards")


class ShardLeases:
    """The shards this replica holds, refreshed from :meth:`current`."""

    def __init__(
        self,
        leases: ShardLeaseStore,
        *,
        owner: str,
        peers: Callable[[], Awaitable[int]],
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._leases = leases
        self.owner = owner
        self._peers = peers
        self.ttl = ttl
        self._monotonic = monotonic
        self._next_refresh = -math.inf
        self._live = 1
        #: The shards this replica holds.
        self.owned: frozenset[int] = frozenset()
        # where this replica starts looking for free shards (replicas start apart)
        self._offset = zlib.crc32(owner.encode()) % leases.shards

    def shard_of(self, run_id: str) -> int:
        """The shard of ``run_id``."""
        return shard_of(run_id, self._leases.shards)

    async def current(self) -> frozenset[int]:
        """The shards held now, renewing and rebalancing first when that is due."""
        if self._monotonic() >= self._next_refresh:
            try:
                await self.refresh()
            except StoreError as exc:  # Redis away: keep claiming what was held
                log.warning("shard_leases_failed", error=str(exc))
                self._next_refresh = self._monotonic() + min(1.0, self.ttl / 3)
        return self.owned

    async def refresh(self) -> None:
        """Renew the held leases within this replica's share, give up the rest, take free
        shards up to the share."""
        total = self._leases.shards
        with contextlib.suppress(StoreError):
            self._live = max(1, await self._peers())
        share = math.ceil(total / self._live)
        ordered = sorted(self.owned, key=lambda n: (n - self._offset) % total)
        keep, surplus = ordered[:share], ordered[share:]
        if surplus:
            await self._leases.drop(self.owner, surplus)
        held = await self._leases.hold(self.owner, keep, self.ttl)
        if len(held) < share:
            free = [n for n in self._order(total) if n not in held]
            taken = await self._leases.hold(self.owner, free, self.ttl)
            extra = sorted(taken, key=lambda n: (n - self._offset) % total)[share - len(held) :]
            if extra:
                await self._leases.drop(self.owner, extra)
            held = held | (taken - set(extra))
        if held != self.owned:
            log.info("shards_held", shards=sorted(held), replicas=self._live)
        self.owned = held
        self._next_refresh = self._monotonic() + self.ttl / 3

    def _order(self, total: int) -> list[int]:
        return [(self._offset + k) % total for k in range(total)]

    async def release(self) -> None:
        """Give every lease up (a replica that stops: the others take its shards at once)."""
        owned, self.owned = self.owned, frozenset()
        self._next_refresh = -math.inf
        if owned:
            with contextlib.suppress(StoreError):
                await self._leases.drop(self.owner, owned)


def shard_leases(store: object, presence: Presence, ttl: float) -> ShardLeases | None:
    """The shard leases of ``presence``'s replica on a Redis run store (None on any other
    store: its timer loop claims every shard)."""
    from orch_serv.store.redis_base import RedisBase

    if not isinstance(store, RedisBase):
        return None
    from orch_serv.store.leases import ShardLeaseStore

    return ShardLeases(
        ShardLeaseStore(store), owner=presence.replica_id, peers=presence.live_count, ttl=ttl
    )


__all__ = ["ShardLeases", "shard_leases"]
