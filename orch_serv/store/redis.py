"""The Redis run store: every transition is one Lua script call (see ``lua/``). Reads are in
``redis_reads.py``, the connection, scripts and definitions in ``redis_base.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Self, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orch_serv.constants import TERMINAL_STATES, EventKind, Phase, RunState, TimerKind
from orch_serv.exceptions import StoreError
from orch_serv.store.base import (
    Beat,
    CreateResult,
    Event,
    NewRun,
    Outcome,
    Position,
    Transition,
    TransitionResult,
)
from orch_serv.store.embedded import embedded_client
from orch_serv.store.groups import join_of
from orch_serv.store.keys import DEFAULT_SHARDS
from orch_serv.store.lineage import lineage_paths
from orch_serv.store.redis_base import dumps as _dumps
from orch_serv.store.redis_reads import RedisReads
from orch_serv.store.replicas import RedisReplicas
from orch_serv.store.scripts import register
from orch_serv.store.sentinel import sentinel_client
from orch_serv.store.shape import TRANSITION_ARGS, Field, RunFields
from orch_serv.store.timers import TimerId, due_ms
from orch_serv.urls import check_redis_url, is_cluster_url, is_sentinel_url, mask_url


class RedisRunStore(RedisReads):
    """:class:`~orch_serv.store.base.RunStore` on one Redis primary."""

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        prefix: str = "orch_serv",
        retention_seconds: int = 7 * 24 * 3600,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        shards: int = DEFAULT_SHARDS,
    ) -> Self:
        """Connect to ``url`` and check that Redis answers (fails fast if it does not).
        ``redis+sentinel://`` follows the primary its Sentinels name
        (:mod:`orch_serv.store.sentinel`), ``redis+cluster://`` talks to a Redis Cluster
        (:mod:`orch_serv.store.cluster`); ``memory://NAME`` opens the embedded in-process
        store instead. ``shards``: see :class:`~orch_serv.store.keys.Keys` (a deployment's
        count is fixed: another one raises :class:`StoreError`)."""
        if url.startswith("memory://"):
            store = cls(
                embedded_client(url),
                prefix=prefix,
                retention_seconds=retention_seconds,
                clock=clock,
                shards=shards,
            )
            await store.check_shards()
            return store
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": timeout,
            "health_check_interval": 30,
        }
        try:
            if is_sentinel_url(check_redis_url(url)):
                client = sentinel_client(url, **options)
            elif is_cluster_url(url):
                from orch_serv.store.cluster import cluster_client

                client = cluster_client(url, **options)
            else:
                client = aioredis.Redis.from_url(url, **options)
        except ValueError as exc:
            raise StoreError(f"invalid Redis URL: {exc}") from None
        try:
            await cast(Awaitable[bool], client.ping())
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"cannot connect to Redis at {mask_url(url)}: {exc}") from exc
        store = cls(
            client, prefix=prefix, retention_seconds=retention_seconds, clock=clock, shards=shards
        )
        try:
            await store.check_shards()
        except BaseException:
            await store.close()
            raise
        return store

    # -- runs --------------------------------------------------------------------------------
    async def create_run(self, new: NewRun) -> CreateResult:
        """Create the run (state PENDING) unless a live run already holds ``new.key``."""
        spec = new.spec
        event = Event(kind=EventKind.RUN_CREATED, time=new.now, body=None)
        fields = {
            "flow": spec.name,
            "version": spec.version,
            "steps_total": len(spec.steps),
            "input": _dumps(new.input),
            "step_name": spec.steps[0].name,
        }
        if new.key:
            fields["key"] = new.key
        if spec.kind != "flow":  # the usual kind is not stored
            fields["kind"] = spec.kind
        if new.deadline is not None:
            fields["deadline"] = repr(new.deadline)
        flat: list[Any] = [x for kv in fields.items() for x in kv]
        deadline = TimerId(new.run_id, TimerKind.DEADLINE)
        rid = new.run_id
        if new.key and self.keys.key_shard(new.key) != self.keys.shard(rid):
            raise ValueError(
                f"run {rid!r} is not in the shard of its idempotency key {new.key!r}: a run "
                "started with a key takes its id from the store's new_run_id(key)"
            )
        created, run_id, state = await self._call(
            "create_run",
            self._pipelined(
                self._create,
                keys=self.keys.with_timers(rid),
                args=[
                    self.keys.base(rid),
                    rid,
                    new.key or "",
                    repr(round(new.now, 6)),
                    spec.name,
                    _dumps(event.to_storage()),
                    str(deadline),
                    "" if new.deadline is None else due_ms(new.deadline),
                    *flat,
                ],
            ),
        )
        return CreateResult(bool(int(created)), run_id, RunState(state))

    async def transition(self, change: Transition) -> TransitionResult:
        """Apply one compare-and-set transition (one Lua call, one round trip)."""
        new = change.new
        terminal = new.state in TERMINAL_STATES
        fields: list[str] = []
        for name, value in RunFields.of(change.fields).stored():
            fields += (name, _dumps(value))
        if change.step_name is not None:
            fields += (Field.STEP_NAME, change.step_name)
        if terminal:
            fields += (Field.FINISHED_AT, repr(round(change.now, 6)))
        expect = change.expect
        phase = new.phase or (Phase.DONE if terminal else None)
        if phase is None:
            raise ValueError("a transition to an active state needs a phase")
        rid = change.run_id
        shard = self.keys.of_run(rid)
        join = join_of(self.keys, rid) if terminal else None
        argv = TRANSITION_ARGS.argv(
            base=shard.base,
            prefix=self.keys.prefix,
            run_id=rid,
            cause=change.cause,
            now=repr(change.now),
            retention_ms=self.retention_ms if terminal else 0,
            expect_states=sorted({expect.state.value, *(s.value for s in change.also_states)}),
            expect_step=_any(expect.step),
            expect_attempt=_any(expect.attempt),
            expect_phase="*" if expect.phase is None else expect.phase.value,
            new_state=new.state.value,
            new_step=_any(new.step),
            new_attempt=_any(new.attempt),
            new_phase=phase.value,
            clear_timers="1" if change.clear_timers else "0",
            ignored=_dumps(change.ignored.to_storage()) if change.ignored else "",
            join_member=join.member if join else "",
            join_timer=join.timer if join else "",
            fields=fields,
            events=[_dumps(e.to_storage()) for e in change.events],
            statuses=change.statuses,
            timers_add=[x for member, due in change.timers_add for x in (member, due_ms(due))],
            timers_remove=change.timers_remove,
        )
        reply = await self._call(
            "transition",
            self._pipelined(
                self._transition,
                keys=[
                    shard.run(rid),
                    shard.events(rid),
                    shard.statuses(rid),
                    shard.timers,
                    shard.run_timers(rid),
                    *((join.key,) if join else ()),
                ],
                args=argv,
            ),
        )
        if reply == _APPLIED:  # the usual answer, one string (cheaper to parse than six)
            return _APPLIED_RESULT
        outcome, state, step, attempt, phase_now, reason = reply
        if outcome == Outcome.NOT_FOUND.value:
            return TransitionResult(Outcome.NOT_FOUND)
        current = Position(
            RunState(state), int(step), int(attempt), Phase(phase_now) if phase_now else None
        )
        return TransitionResult(Outcome(outcome), current, reason or None)

    async def heartbeat(self, beat: Beat) -> str:
        """Record a start notice / heartbeat (one Lua call)."""
        rid = beat.run_id
        execution = beat.execution_timer
        heartbeat = beat.heartbeat_timer
        return str(
            await self._call(
                "heartbeat",
                self._pipelined(
                    self._heartbeat,
                    keys=self.keys.with_timers(rid),
                    args=[
                        beat.state.value,
                        beat.step,
                        beat.attempt,
                        repr(beat.now),
                        _dumps(beat.started.to_storage()),
                        _dumps(beat.progress.to_storage()) if beat.progress else "",
                        beat.dispatch_timer,
                        execution[0] if execution else "",
                        due_ms(execution[1]) if execution else "",
                        heartbeat[0] if heartbeat else "",
                        due_ms(heartbeat[1]) if heartbeat else "",
                    ],
                ),
            )
        )

    async def claim_timers(
        self, now: float, lease: float, limit: int, shards: Collection[int] | None = None
    ) -> list[tuple[str, int]]:
        """Claim due timers with a lease, from ``shards`` (default: every shard), at most
        ``limit`` per shard; returns (member, lease end ms) pairs."""
        lease_ms = due_ms(now + lease)
        wanted = range(self.keys.shards) if shards is None else shards
        calls = [
            self._pipelined(
                self._claim, keys=[self.keys.of(n).timers], args=[due_ms(now), lease_ms, limit]
            )
            for n in wanted
        ]
        raws = await self._call("claim_timers", asyncio.gather(*calls))
        return [(raw[i], lease_ms) for raw in raws for i in range(0, len(raw), 2)]

    async def release_timer(self, member: str, lease_ms: int) -> None:
        """Remove a handled timer unless it was set again meanwhile."""
        run_id = member.split("|", 1)[0]
        shard = self.keys.of_run(run_id)
        await self._call(
            "release_timer",
            self._release(keys=[shard.timers, shard.run_timers(run_id)], args=[member, lease_ms]),
        )

    async def move_timer(self, member: str, due: float) -> None:
        """Move a pending timer to ``due`` (a wait's or a group's next check, a check made due
        now); nothing when it is gone (the run moved on and cleared it)."""
        timers = self.keys.timers_of(member.split("|", 1)[0])
        await self._call("move_timer", self._redis.zadd(timers, {member: due_ms(due)}, xx=True))

    async def next_timer_due(self, shards: Collection[int] | None = None) -> float | None:
        """Due time of the earliest timer of ``shards`` (default: every shard), in seconds, or
        None when there is none."""
        wanted = range(self.keys.shards) if shards is None else shards
        pipe = self._redis.pipeline(transaction=False)
        for n in wanted:
            pipe.zrange(self.keys.of(n).timers, 0, 0, withscores=True)
        firsts = await self._call("next_timer", pipe.execute()) if wanted else []
        dues = [float(first[0][1]) for first in firsts if first]
        return min(dues) / 1000 if dues else None

    async def record_event(
        self,
        run_id: str,
        event: Event,
        status: str | None,
        *,
        paths: Sequence[str] | None = None,
    ) -> RunState | None:
        """Append an event and a status; None if the run does not exist. The event's file
        paths (``paths``; by default those of a status event's lineage body, see
        :func:`~orch_serv.store.lineage.lineage_paths`) are indexed in the same call, for the
        lookup of a run by a path."""
        if paths is None:
            paths = lineage_paths(event.body) if event.kind is EventKind.STATUS else ()
        shard = self.keys.of_run(run_id)
        keys = [shard.run(run_id), shard.events(run_id), shard.statuses(run_id)]
        state = await self._call(
            "record_event",
            self._pipelined(
                self._record,
                keys=keys + [shard.path_index(p) for p in paths],
                args=[_dumps(event.to_storage()), status or "", repr(event.time), run_id],
            ),
        )
        return RunState(state) if state else None

    async def mark_once(self, run_id: str, token: str, ttl: float) -> bool:
        """Set the idempotency mark ``token`` of the run unless it is set (``SET NX PX``,
        expiring after ``ttl`` seconds); True if this call set it."""
        created = await self._call(
            "mark_once",
            self._redis.set(
                self.keys.once(run_id, token), "1", nx=True, px=max(1, round(ttl * 1000))
            ),
        )
        return bool(created)

    def replicas(self, namespace: str) -> RedisReplicas:
        """The orchestrator replicas announced for an AMQP namespace."""
        return RedisReplicas(self._redis, namespace)

    async def count_recovery(self, run_id: str, scope: str) -> int:
        """Count one more re-sent START/RESUME of a stranded run at position ``scope``
        (0: no such run)."""
        script = register(self._redis, _COUNT_RECOVERY)
        count = await self._call(
            "count_recovery", script(keys=[self.keys.run(run_id)], args=[f"recoveries:{scope}"])
        )
        return int(count)

    async def housekeeping(self, now: float | None = None) -> int:
        """Remove index entries whose run has expired; returns how many were removed."""
        now = self.clock() if now is None else now
        horizon = now - self.retention_ms / 1000
        removed = 0
        indexes: list[str] = []
        for shard in self.keys.every_shard:
            indexes += [shard.state_index(s.value) for s in TERMINAL_STATES]
            for pattern in (shard.flow_index("*"), shard.path_index("*")):
                indexes += [k async for k in self._redis.scan_iter(match=pattern, count=1000)]
        for index in indexes:
            ids = await self._call(
                "housekeeping", self._redis.zrangebyscore(index, "-inf", horizon)
            )
            if not ids:
                continue
            pipe = self._redis.pipeline(transaction=False)
            for rid in ids:
                pipe.exists(self.keys.run(rid))
            alive = await self._call("housekeeping", pipe.execute())
            gone = [rid for rid, ok in zip(ids, alive, strict=True) if not ok]
            if gone:
                removed += await self._call("housekeeping", self._redis.zrem(index, *gone))
        return removed


#: HINCRBY only on a run that exists (a plain HINCRBY would create a hash for a gone run).
_COUNT_RECOVERY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
"""


_APPLIED = Outcome.APPLIED.value
_APPLIED_RESULT = TransitionResult(Outcome.APPLIED)


def _any(value: int | None) -> str:
    """A position member as the scripts compare it: its decimal string, '*' for any."""
    return "*" if value is None else str(value)


__all__ = ["RedisRunStore"]
