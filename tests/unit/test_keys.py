"""The sharded key layout (orch_serv/store/keys.py)."""

from __future__ import annotations

import functools
import re

import pytest

from orch_serv.messages.ids import new_run_id
from orch_serv.settings import Settings
from orch_serv.store.keys import Keys, key_shard, shard_of


def _tag(key: str) -> str:
    match = re.search(r"\{([^}]*)\}", key)
    assert match is not None, key
    return match.group(1)


def test_every_key_of_a_run_and_its_indexes_share_one_hash_tag() -> None:
    keys = Keys("p", 16)
    run_id = new_run_id()
    shard = keys.of_run(run_id)
    names = [keys.run(run_id), keys.events(run_id), keys.statuses(run_id)]
    names += [keys.run_timers(run_id), keys.once(run_id, "t"), keys.timers_of(run_id)]
    names += [shard.state_index("RUNNING"), shard.flow_index("f"), shard.path_index("a/b")]
    names += [shard.owner, shard.by_key("k")]
    assert {_tag(n) for n in names} == {f"s{keys.shard(run_id)}"}


def test_group_members_live_in_their_parents_shard() -> None:
    for n in range(50):
        parent = f"run-{n}"
        assert shard_of(f"{parent}~3.1.17", 16) == shard_of(parent, 16)
        assert shard_of(f"{parent}~3.1.17~0.1.2", 16) == shard_of(parent, 16)


def test_runs_spread_over_every_shard() -> None:
    assert {shard_of(new_run_id(), 16) for _ in range(2000)} == set(range(16))


def _in_shard(keys: Keys, shard: int, run_id: str) -> bool:
    return keys.shard(run_id) == shard


def test_a_keyed_run_id_is_drawn_in_the_keys_shard() -> None:
    keys = Keys("p", 16)
    for key in ("order-1", "order-2", "ünïcode", "x" * 300):
        shard = keys.key_shard(key)
        run_id = new_run_id(functools.partial(_in_shard, keys, shard))
        assert keys.shard(run_id) == shard == key_shard(key, 16)
        assert _tag(keys.by_key(key)) == _tag(keys.run(run_id))


@pytest.mark.parametrize("count", [0, -1, 1025])
def test_a_shard_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="shard count"):
        Keys("p", count)
    with pytest.raises(ValueError, match="shards"):
        Settings(shards=count)
