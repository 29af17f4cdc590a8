"""A group step's join in Redis: one small hash per (parent run, step, attempt).

The hash holds ``#n`` (how many members), ``#s`` (how many were started, for a map that
starts them as others end) and one field per member that has ended: ``<member index>`` ->
its terminal state. The member's terminal transition writes that field and makes the group's
check due at once, in the same Lua call (``transition.lua``, given the keys by
:func:`join_of`): HSET is idempotent under a redelivered reply, and there is no counter to
lose. A member's result stays in its own run hash (read when the join is decided), so the
parent's memory per member is one short field. The hash expires with the retention; every
check pushes that back while the group is open.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from orch_serv.constants import Lane, RunState, TimerKind
from orch_serv.exceptions import StoreError
from orch_serv.flow.groups import parse_member_id
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import RunStore
from orch_serv.store.keys import Keys
from orch_serv.store.timers import TimerId

if TYPE_CHECKING:  # the client library is loaded only by a Redis store, not at import
    import redis.asyncio as aioredis

    from orch_serv.store.redis_base import RedisBase

#: Field of the join hash: how many members the group has.
TOTAL: Final = "#n"
#: Field of the join hash: how many members have been started (indexes below it).
STARTED: Final = "#s"


def join_key(keys: Keys, parent: str, step: int, attempt: int) -> str:
    """The join hash of (parent run, step, attempt), beside the parent's hash (same shard)."""
    return f"{keys.run(parent)}:join:{step}.{attempt}"


def group_timer(parent: str, step: int, attempt: int) -> str:
    """The member of the timer set that checks the group of (parent, step, attempt)."""
    return str(TimerId(parent, TimerKind.GROUP, Lane.RUN, step, attempt))


@dataclass(frozen=True, slots=True)
class JoinRef:
    """Where a member's end is recorded: the parent's join hash, the member's field in it and
    the group check to make due (what ``transition.lua`` gets for a member's run)."""

    key: str
    member: str
    timer: str


def join_of(keys: Keys, run_id: str) -> JoinRef | None:
    """The join a run's end is recorded in, None for a run that is no group member."""
    parsed = parse_member_id(run_id)
    if parsed is None:
        return None
    parent, step, attempt, member = parsed
    return JoinRef(
        join_key(keys, parent, step, attempt), str(member), group_timer(parent, step, attempt)
    )


@dataclass(frozen=True, slots=True)
class Ended:
    """How one member ended: its state, its result (when it succeeded) or its error."""

    state: RunState
    result: Any = None
    error: ErrorInfo | None = None


class GroupJoins:
    """The join hashes and group checks of a run store's Redis (see :func:`joins_of`)."""

    def __init__(self, client: aioredis.Redis, keys: Keys, retention_ms: int) -> None:
        self._redis = client
        self.keys = keys
        self.retention_ms = retention_ms

    async def _do(self, what: str, call: Awaitable[Any]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await call
        except (RedisError, OSError) as exc:
            raise StoreError(f"group {what}: {exc}") from exc

    async def open(self, parent: str, step: int, attempt: int, total: int) -> dict[str, str]:
        """Create the join hash (idempotent), push its expiry back and return its fields."""
        key = join_key(self.keys, parent, step, attempt)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hsetnx(key, TOTAL, str(total))
        pipe.pexpire(key, self.retention_ms)
        pipe.hgetall(key)
        *_, fields = await self._do("open", pipe.execute())
        return cast(dict[str, str], fields)

    async def read(self, parent: str, step: int, attempt: int) -> dict[str, str]:
        """The join hash's fields (empty when there is none)."""
        key = join_key(self.keys, parent, step, attempt)
        fields = await self._do("read", cast(Awaitable[Any], self._redis.hgetall(key)))
        return cast(dict[str, str], fields)

    async def set_started(self, parent: str, step: int, attempt: int, started: int) -> None:
        """Record that members below ``started`` have been started."""
        key = join_key(self.keys, parent, step, attempt)
        pending = self._redis.hset(key, STARTED, str(started))
        await self._do("started", cast(Awaitable[Any], pending))

    async def detach(self, parent: str, step: int, attempt: int) -> None:
        """Take the group's check out of the run's own timers, so that the run's next
        transitions (its end, a cancel) leave it: it then cancels the members left running."""
        member = group_timer(parent, step, attempt)
        await self._do(
            "detach",
            cast(Awaitable[Any], self._redis.srem(self.keys.run_timers(parent), member)),
        )

    async def mark_decided(self, parent: str, step: int, attempt: int, field: str) -> bool:
        """Mark the group decided; True for the call that marked it first."""
        key = join_key(self.keys, parent, step, attempt)
        return bool(
            await self._do("decided", cast(Awaitable[Any], self._redis.hsetnx(key, field, "1")))
        )

    async def expire(self, parent: str, step: int, attempt: int) -> None:
        """Let the join hash expire after the retention (the group is over)."""
        key = join_key(self.keys, parent, step, attempt)
        await self._do("expire", self._redis.pexpire(key, self.retention_ms))

    async def ended(self, run_ids: Sequence[str]) -> list[Ended | None]:
        """How each run ended (None: gone, or not ended), read in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for rid in run_ids:
            pipe.hmget(self.keys.run(rid), ["state", "result", "error"])
        rows = await self._do("results", pipe.execute())
        found: list[Ended | None] = []
        for state, result, error in rows:
            if state is None or not RunState(state).terminal:
                found.append(None)
                continue
            found.append(
                Ended(
                    RunState(state),
                    orjson.loads(result) if result else None,
                    ErrorInfo.from_stored(orjson.loads(error)) if error else None,
                )
            )
        return found


_JOINS: weakref.WeakKeyDictionary[RedisBase, GroupJoins] = weakref.WeakKeyDictionary()


def joins_of(store: RunStore) -> GroupJoins:
    """The group joins of ``store`` (a Redis run store, real or embedded)."""
    from orch_serv.store.redis_base import RedisBase

    if not isinstance(store, RedisBase):
        raise StoreError(f"groups need a Redis run store, not {type(store).__name__}")
    joins = _JOINS.get(store)
    if joins is None:
        joins = _JOINS[store] = GroupJoins(store.redis, store.keys, store.retention_ms)
    return joins


__all__ = [
    "STARTED",
    "TOTAL",
    "Ended",
    "GroupJoins",
    "JoinRef",
    "group_timer",
    "join_key",
    "join_of",
    "joins_of",
]
