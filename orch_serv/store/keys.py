"""Redis key names, in one place: the sharded layout of runs (docs/architecture.md, "Shards").

Every run belongs to one of ``shards`` shards (a setting fixed per deployment, default 16),
computed from its id (:func:`shard_of`). Every key a script touches for a run (its hash,
events, statuses, timer members) and every index it moves (its shard's timer set, state,
flow and path indexes, idempotency keys) carries the shard's hash tag ``{s<n>}``, so each
Lua call is single-slot on Redis Cluster. Readers that list or look up across runs (listings,
path lookups, timer claims) read every shard and merge.

Definitions, status models, charts' definitions, tokens and other deployment-wide keys are
not per run; they stay outside the shards (``<prefix>:specs`` ...).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Final

#: The shard count when the settings name none.
DEFAULT_SHARDS: Final = 16
#: The most shards a deployment may have (each shard's indexes are read by listings).
MAX_SHARDS: Final = 1024
#: Runs whose id starts with another run's id and this mark share that run's shard (the
#: members of a parallel group are child runs ``<parent>~...``).
ROOT_MARK: Final = "~"


def shard_of(run_id: str, shards: int) -> int:
    """The shard of ``run_id``: CRC-32 of its root (the part before the first ``~``)."""
    root = run_id.split(ROOT_MARK, 1)[0]
    return zlib.crc32(root.encode()) % shards


def key_shard(key: str, shards: int) -> int:
    """The shard an idempotency key (and so the run started with it) lives in."""
    return zlib.crc32(b"key\x00" + key.encode()) % shards


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """Key names inside one shard: ``base`` is ``<prefix>:{s<n>}`` (the Lua scripts get it as
    their ``base`` argument and build the index names they move from it)."""

    base: str

    def run(self, run_id: str) -> str:
        """The run's hash."""
        return f"{self.base}:run:{run_id}"

    def events(self, run_id: str) -> str:
        """The run's append-only event list."""
        return f"{self.base}:run:{run_id}:ev"

    def statuses(self, run_id: str) -> str:
        """The set of statuses the run reached."""
        return f"{self.base}:run:{run_id}:st"

    def once(self, run_id: str, token: str) -> str:
        """An idempotency mark a handler set with ``ctx.once`` (token: command id and key)."""
        return f"{self.base}:run:{run_id}:once:{token}"

    def run_timers(self, run_id: str) -> str:
        """The members of the timer set that belong to the run (to clear them at the end)."""
        return f"{self.base}:run:{run_id}:tm"

    @property
    def timers(self) -> str:
        """The shard's timers (dispatch, heartbeat, execution, total, retry, deadline, wait)
        by due ms."""
        return f"{self.base}:timers"

    def by_key(self, key: str) -> str:
        """External key -> run id."""
        return f"{self.base}:key:{key}"

    def path_index(self, path: str) -> str:
        """Run ids whose history recorded ``path`` (a lineage file of a status event, an Oslo
        ``s3_path``), scored by the time it was recorded: the status-from-path lookup."""
        return f"{self.base}:idx:path:{path}"

    def state_index(self, state: str) -> str:
        """Run ids in a state, scored by the time they entered it."""
        return f"{self.base}:idx:state:{state}"

    def flow_index(self, flow: str) -> str:
        """Run ids of a flow (or single-block runs of a block), scored by creation time."""
        return f"{self.base}:idx:flow:{flow}"

    @property
    def owner(self) -> str:
        """The orchestrator replica that claims the shard's timers (a lease)."""
        return f"{self.base}:owner"


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix, with runs spread over ``shards`` shards."""

    prefix: str
    shards: int = DEFAULT_SHARDS
    _by_shard: tuple[ShardKeys, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ValueError(f"the shard count must be 1..{MAX_SHARDS}, not {self.shards}")
        shards = tuple(ShardKeys(f"{self.prefix}:{{s{n}}}") for n in range(self.shards))
        object.__setattr__(self, "_by_shard", shards)

    # -- shards --------------------------------------------------------------------------------
    def shard(self, run_id: str) -> int:
        """The shard of ``run_id``."""
        return shard_of(run_id, self.shards)

    def of(self, shard: int) -> ShardKeys:
        """The key names of shard ``shard``."""
        return self._by_shard[shard]

    def of_run(self, run_id: str) -> ShardKeys:
        """The key names of ``run_id``'s shard."""
        return self._by_shard[shard_of(run_id, self.shards)]

    @property
    def every_shard(self) -> tuple[ShardKeys, ...]:
        """The key names of every shard, shard 0 first."""
        return self._by_shard

    # -- one run -------------------------------------------------------------------------------
    def base(self, run_id: str) -> str:
        """``<prefix>:{s<n>}`` of ``run_id``'s shard (the scripts' ``base`` argument)."""
        return self.of_run(run_id).base

    def run(self, run_id: str) -> str:
        """The run's hash."""
        return self.of_run(run_id).run(run_id)

    def events(self, run_id: str) -> str:
        """The run's append-only event list."""
        return self.of_run(run_id).events(run_id)

    def statuses(self, run_id: str) -> str:
        """The set of statuses the run reached."""
        return self.of_run(run_id).statuses(run_id)

    def once(self, run_id: str, token: str) -> str:
        """An idempotency mark a handler set with ``ctx.once``."""
        return self.of_run(run_id).once(run_id, token)

    def run_timers(self, run_id: str) -> str:
        """The run's own timer members."""
        return self.of_run(run_id).run_timers(run_id)

    def timers_of(self, run_id: str) -> str:
        """The timer set of ``run_id``'s shard."""
        return self.of_run(run_id).timers

    def with_timers(self, run_id: str) -> list[str]:
        """The keys a script that sets a run's timers touches: hash, events, its shard's timer
        set and the run's own timer members."""
        keys = self.of_run(run_id)
        return [keys.run(run_id), keys.events(run_id), keys.timers, keys.run_timers(run_id)]

    def by_key(self, key: str) -> str:
        """External key -> run id, in the key's shard (the run started with it is created in
        that shard too: :func:`orch_serv.messages.ids.new_run_id`)."""
        return self.of(key_shard(key, self.shards)).by_key(key)

    def key_shard(self, key: str) -> int:
        """The shard of the run started with idempotency key ``key``."""
        return key_shard(key, self.shards)

    # -- deployment-wide -----------------------------------------------------------------------
    @property
    def specs(self) -> str:
        """Current definitions: '<kind>:<name>' -> spec JSON."""
        return f"{self.prefix}:specs"

    @property
    def spec_versions(self) -> str:
        """Every definition ever registered: '<kind>:<name>:<version>' -> spec JSON."""
        return f"{self.prefix}:specs:versions"

    @property
    def meta(self) -> str:
        """Registry metadata (default flow, default block, the shard count)."""
        return f"{self.prefix}:meta"

    @property
    def models(self) -> str:
        """Current status models: name -> model JSON."""
        return f"{self.prefix}:models"

    @property
    def model_versions(self) -> str:
        """Every status model ever published: '<name>:<version>' -> model JSON."""
        return f"{self.prefix}:models:versions"

    @property
    def global_statuses(self) -> str:
        """Statusek's global events (``status/setGlobalStatus``), oldest first."""
        return f"{self.prefix}:statusek:global"

    @property
    def finished_channel(self) -> str:
        """Pub/sub channel on which finished run ids are announced."""
        return f"{self.prefix}:finished"


__all__ = [
    "DEFAULT_SHARDS",
    "MAX_SHARDS",
    "ROOT_MARK",
    "Keys",
    "ShardKeys",
    "key_shard",
    "shard_of",
]
