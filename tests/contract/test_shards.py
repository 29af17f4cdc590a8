"""Shards in the store contract (embedded fakeredis and real Redis): a deployment's shard
count is fixed, a keyed run lives in its key's shard, and timers, listings and lookups read
every shard."""

from __future__ import annotations

import pytest

from orch_serv.constants import RunState, TimerKind
from orch_serv.exceptions import StoreError
from orch_serv.store.base import NewRun
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.timers import TimerId
from tests.contract.test_store import SPEC

FAR = 4_000_000_000.0  # deadlines after the real clock: the runs stay PENDING


async def _reopen(store: RedisRunStore, shards: int) -> RedisRunStore:
    return RedisRunStore(store.redis, prefix=store.keys.prefix, shards=shards)


async def test_the_shard_count_is_fixed_once_definitions_are_registered(
    store: RedisRunStore,
) -> None:
    other = await _reopen(store, 8)
    await other.check_shards()  # nothing recorded yet: any count passes
    await store.register_specs([SPEC], default_flow=None, default_block=None)
    await store.check_shards()
    with pytest.raises(StoreError, match="kept in 16 shards, not 8: set ORCH_SERV_SHARDS=16"):
        await other.check_shards()
    with pytest.raises(StoreError, match="not 8"):
        await other.register_specs([SPEC], default_flow=None, default_block=None)


async def test_a_keyed_run_must_take_its_id_from_the_store(store: RedisRunStore) -> None:
    key = "order-9"
    wrong = next(
        f"r{n}" for n in range(100) if store.keys.shard(f"r{n}") != store.keys.key_shard(key)
    )
    with pytest.raises(ValueError, match="not in the shard of its idempotency key"):
        await store.create_run(NewRun(run_id=wrong, spec=SPEC, input={}, now=1.0, key=key))
    assert await store.get_run(wrong) is None and await store.find_by_key(key) is None


async def test_timers_and_listings_read_every_shard(store: RedisRunStore) -> None:
    ids = [f"run-{n}" for n in range(40)]
    assert len({store.keys.shard(r) for r in ids}) > 8  # spread over many shards
    for n, run_id in enumerate(ids):
        await store.create_run(
            NewRun(run_id=run_id, spec=SPEC, input={}, now=100.0 + n, deadline=FAR + n)
        )
    assert await store.next_timer_due() == FAR
    one = store.keys.shard(ids[5])
    first_of_one = next(n for n, r in enumerate(ids) if store.keys.shard(r) == one)
    assert await store.next_timer_due([one]) == FAR + first_of_one
    claimed = await store.claim_timers(now=FAR + 100, lease=30.0, limit=100)
    assert sorted(m for m, _ in claimed) == sorted(str(TimerId(r, TimerKind.DEADLINE)) for r in ids)
    only = await store.claim_timers(now=FAR + 1000, lease=30.0, limit=100, shards=[one])
    assert {store.keys.shard(m.split("|")[0]) for m, _ in only} == {one}
    listed = await store.list_runs(flow="f", limit=100)
    assert [r.run_id for r in listed] == list(reversed(ids))  # newest first, across shards
    pending = await store.list_runs(state=RunState.PENDING, limit=7)
    assert [r.run_id for r in pending] == list(reversed(ids))[:7]
