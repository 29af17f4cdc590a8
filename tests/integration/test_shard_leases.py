"""Orchestrator replicas divide the shards' timers by lease (orchestrator/shards.py), on the
real Redis: a fair share each, a joining replica gets its part, a stopping one hands its
shards over at once, a dead one's shards are taken once its leases expire."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orch_serv.constants import TimerKind
from orch_serv.orchestrator.shards import ShardLeases
from orch_serv.orchestrator.timers import TimerLoop
from orch_serv.store.leases import ShardLeaseStore
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.timers import TimerId
from tests.conftest import REDIS_URL, cleanup, eventually, unique_name

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def leases() -> AsyncIterator[ShardLeaseStore]:
    prefix = unique_name("lease")
    store = await RedisRunStore.connect(REDIS_URL, prefix=prefix, shards=16)
    yield ShardLeaseStore(store)
    await store.close()
    await cleanup(prefix, prefix)


class Peers:
    """How many replicas are alive, as the presence registry would answer."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def __call__(self) -> int:
        return self.count


def replica(leases: ShardLeaseStore, owner: str, peers: Peers, ttl: float = 30.0) -> ShardLeases:
    return ShardLeases(leases, owner=owner, peers=peers, ttl=ttl)


async def test_one_replica_holds_every_shard(leases: ShardLeaseStore) -> None:
    alone = replica(leases, "a", Peers(1))
    assert await alone.current() == frozenset(range(16))


async def test_two_replicas_divide_the_shards_and_a_stopping_one_hands_them_over(
    leases: ShardLeaseStore,
) -> None:
    peers = Peers(1)
    a, b = replica(leases, "a", peers), replica(leases, "b", peers)
    await a.refresh()
    assert a.owned == frozenset(range(16))
    peers.count = 2  # b joins: a gives up half at its next refresh, b takes them
    await b.refresh()
    assert b.owned == frozenset()  # nothing free yet
    await a.refresh()
    await b.refresh()
    assert len(a.owned) == 8 and len(b.owned) == 8
    assert a.owned | b.owned == frozenset(range(16)) and not a.owned & b.owned
    await a.refresh()  # a second round changes nothing: the leases are renewed
    assert len(a.owned) == 8
    peers.count = 1
    await a.release()  # a stops: its shards are free at once
    await b.refresh()
    assert b.owned == frozenset(range(16))


async def test_a_dead_replicas_shards_are_taken_when_its_leases_expire(
    leases: ShardLeaseStore,
) -> None:
    peers = Peers(2)
    dead = replica(leases, "dead", peers, ttl=0.3)
    await dead.refresh()
    assert len(dead.owned) == 8
    survivor = replica(leases, "survivor", Peers(1), ttl=30.0)
    await survivor.refresh()
    assert survivor.owned == frozenset(range(16)) - dead.owned
    # `dead` renews nothing any more (SIGKILL): its leases run out and the survivor takes them

    async def all_taken() -> bool:
        await survivor.refresh()
        return survivor.owned == frozenset(range(16))

    assert await eventually(all_taken, timeout=10, interval=0.05)


async def test_a_timer_this_replica_makes_due_now_in_another_replicas_shard_fires_here(
    leases: ShardLeaseStore,
) -> None:
    """A wait or group check made due now by a replica that does not hold the run's shard
    runs on that replica at once, not at the holder's next poll."""
    peers = Peers(2)
    other = replica(leases, "other", peers)
    await other.refresh()
    mine = replica(leases, "mine", peers)
    store = leases._store
    assert isinstance(store, RedisRunStore)
    fired: list[str] = []

    async def handler(timer: TimerId) -> None:
        fired.append(timer.run_id)

    loop = TimerLoop(store, handler, clock=time.time, poll=30.0, shards=mine)
    await loop.tick()  # takes its share: the shards `other` does not hold
    assert mine.owned and not mine.owned & other.owned
    run_id = next(f"r{n}" for n in range(1000) if store.keys.shard(f"r{n}") in other.owned)
    member = str(TimerId(run_id, TimerKind.WAIT, step=1, attempt=1))
    now = time.time()
    await store.redis.zadd(store.keys.timers_of(run_id), {member: int(now * 1000)})
    assert await loop.tick() == 0  # not its shard: the holder's
    loop.poke(now, run_id)  # ...unless it set the timer itself
    assert await loop.tick() == 1

    async def handled() -> bool:
        return fired == [run_id]

    assert await eventually(handled)
    assert not loop._borrowed  # borrowed for that one claim only
    await loop.stop()
