"""The Redis connection a run store works on: the client, its key names, the Lua scripts (each
with the constants it shares with Python in front), the pipeliner, and error translation."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any, Self

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orch_serv.exceptions import StoreError
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages import ids
from orch_serv.store.keys import DEFAULT_SHARDS, Keys
from orch_serv.store.pipeliner import ScriptPipeliner
from orch_serv.store.scripts import register
from orch_serv.store.shape import TRANSITION_ARGS, ScriptArgs, lua_prelude


def lua(name: str, args: ScriptArgs | None = None) -> str:
    """A script with the constants it shares with Python (``shape.lua_prelude``) and the
    declarations of its named arguments in front."""
    body = resources.files("orch_serv.store").joinpath("lua", name).read_text()
    return lua_prelude() + (args.lua() if args is not None else "") + body


def dumps(value: Any) -> str:
    """JSON text, as the run hash and the event list keep values."""
    return orjson.dumps(value).decode()


class RedisBase:
    """The client, key names, scripts and definitions of a Redis run store."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "orch_serv",
        retention_seconds: int = 7 * 24 * 3600,
        clock: Callable[[], float] = time.time,
        shards: int = DEFAULT_SHARDS,
    ) -> None:
        self._redis = client
        self.clock = clock
        self.keys = Keys(prefix, shards)
        self.retention_ms = retention_seconds * 1000
        self._create = register(client, lua("create_run.lua"))
        self._transition = register(client, lua("transition.lua", TRANSITION_ARGS))
        self._record = register(client, lua("record_event.lua"))
        self._heartbeat = register(client, lua("heartbeat.lua"))
        self._claim = register(client, lua("claim_timers.lua"))
        self._release = register(client, lua("release_timer.lua"))
        self._position = register(client, lua("position.lua"))
        self._pipeliner = ScriptPipeliner(client)
        self._closed = False

    async def close(self) -> None:
        """Close the connection pool; idempotent."""
        if not self._closed:
            self._closed = True
            await self._redis.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def redis(self) -> aioredis.Redis:
        """The underlying client (for tests and housekeeping tools)."""
        return self._redis

    async def check_shards(self, *, record: bool = False) -> None:
        """Refuse a shard count other than the one the deployment's runs are kept in: runs
        are found by the shard their id maps to, so the count never changes once the first
        definitions are registered (``record``: the count is recorded then; see
        docs/operations.md, "Shards")."""
        op: Any
        if record:
            op = self._redis.eval(_RECORD_SHARDS, 1, self.keys.meta, str(self.keys.shards))
        else:
            op = self._redis.hget(self.keys.meta, "shards")
        stored = await self._call("check_shards", op)
        if stored is not None and int(stored) != self.keys.shards:
            raise StoreError(
                f"the runs under key prefix {self.keys.prefix!r} are kept in {stored} shards, "
                f"not {self.keys.shards}: set ORCH_SERV_SHARDS={stored} (a deployment's shard "
                "count is fixed when it first starts; see docs/operations.md, 'Shards')"
            )

    def new_run_id(self, key: str | None = None) -> str:
        """A fresh run id; with an idempotency ``key``, one in the key's shard (where the
        key's reference to its run lives: both are written by one script)."""
        if key is None:
            return ids.new_run_id()
        shard, keys = self.keys.key_shard(key), self.keys
        return ids.new_run_id(lambda run_id: keys.shard(run_id) == shard)

    def _pipelined(self, script: Any, *, keys: list[Any], args: list[Any]) -> Any:
        return self._pipeliner.call(script, keys, args)

    async def _call(self, what: str, op: Any) -> Any:
        """Await a redis-py call, translating its errors into :class:`StoreError`."""
        try:
            return await op if inspect.isawaitable(op) else op
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis {what} failed: {exc}") from exc

    # -- definitions -------------------------------------------------------------------------
    async def register_specs(
        self, specs: Sequence[FlowSpec], *, default_flow: str | None, default_block: str | None
    ) -> None:
        """Publish definitions; each version stays readable for the runs pinned to it. The
        first registration records the deployment's shard count."""
        await self.check_shards(record=True)
        current = {f"{s.kind}:{s.name}": s.model_dump_json() for s in specs}
        versions = {f"{s.kind}:{s.name}:{s.version}": s.model_dump_json() for s in specs}
        # One key at a time, in this order (the keys lie in different slots of a Redis
        # Cluster): a definition is readable by its version before it is the current one.
        if current:
            await self._call(
                "register_specs", self._redis.hset(self.keys.spec_versions, mapping=versions)
            )
            await self._call("register_specs", self._redis.hset(self.keys.specs, mapping=current))
        meta = {"default_flow": default_flow, "default_block": default_block}
        chosen = {name: value for name, value in meta.items() if value}
        if chosen:
            await self._call("register_specs", self._redis.hset(self.keys.meta, mapping=chosen))

    async def get_spec(self, kind: str, name: str, version: str | None = None) -> FlowSpec | None:
        """The current definition, or the given version of it."""
        if version:
            raw = await self._call(
                "get_spec", self._redis.hget(self.keys.spec_versions, f"{kind}:{name}:{version}")
            )
        else:
            raw = await self._call("get_spec", self._redis.hget(self.keys.specs, f"{kind}:{name}"))
        return FlowSpec.model_validate_json(raw) if raw else None

    async def list_specs(self) -> list[FlowSpec]:
        """Every current definition, flows first, by name."""
        raw = await self._call("list_specs", self._redis.hvals(self.keys.specs))
        specs = [FlowSpec.model_validate_json(r) for r in raw]
        return sorted(specs, key=lambda s: (s.kind != "flow", s.name))

    async def defaults(self) -> tuple[str | None, str | None]:
        """(default flow, default block) as registered."""
        flow, block = await self._call(
            "defaults", self._redis.hmget(self.keys.meta, ["default_flow", "default_block"])
        )
        return flow, block


def merged(pages: Iterable[Iterable[tuple[Any, Any]]], *, highest_first: bool = True) -> list[str]:
    """The members of sorted-set pages read ``WITHSCORES`` (one per shard), merged in score
    order, then by member: what a reader of every shard's index lists."""
    entries = sorted(((float(s), str(m)) for page in pages for m, s in page), reverse=highest_first)
    return [member for _, member in entries]


#: Sets the meta hash's ``shards`` field unless it is set; answers the stored count.
_RECORD_SHARDS = """
redis.call('HSETNX', KEYS[1], 'shards', ARGV[1])
return redis.call('HGET', KEYS[1], 'shards')
"""

__all__ = ["RedisBase", "dumps", "lua", "merged"]
