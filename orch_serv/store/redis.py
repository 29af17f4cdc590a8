"""The Redis run store: every transition is one Lua script call (see ``lua/``)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Self, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orch_serv.constants import TERMINAL_STATES, EventKind, Lane, Phase, RunState, TimerKind
from orch_serv.exceptions import RunNotFound, StoreError
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.envelope import ErrorInfo, command_message_id
from orch_serv.store.base import (
    Beat,
    CreateResult,
    Event,
    NewRun,
    Outcome,
    Position,
    RunRecord,
    Transition,
    TransitionResult,
)
from orch_serv.store.embedded import embedded_client
from orch_serv.store.keys import Keys
from orch_serv.store.pipeliner import ScriptPipeliner
from orch_serv.store.replicas import RedisReplicas
from orch_serv.store.shape import Field, RunFields, lua_prelude
from orch_serv.store.timers import TimerId, due_ms
from orch_serv.urls import check_redis_url, mask_url


def _lua(name: str) -> str:
    """A script with the constants it shares with Python (``shape.lua_prelude``) in front."""
    return lua_prelude() + resources.files("orch_serv.store").joinpath("lua", name).read_text()


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class RedisRunStore:
    """:class:`~orch_serv.store.base.RunStore` on one Redis primary."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "orch_serv",
        retention_seconds: int = 7 * 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self.clock = clock
        self.keys = Keys(prefix)
        self.retention_ms = retention_seconds * 1000
        self._create = client.register_script(_lua("create_run.lua"))
        self._transition = client.register_script(_lua("transition.lua"))
        self._record = client.register_script(_lua("record_event.lua"))
        self._heartbeat = client.register_script(_lua("heartbeat.lua"))
        self._claim = client.register_script(_lua("claim_timers.lua"))
        self._release = client.register_script(_lua("release_timer.lua"))
        self._position = client.register_script(_lua("position.lua"))
        self._pipeliner = ScriptPipeliner(client)
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        prefix: str = "orch_serv",
        retention_seconds: int = 7 * 24 * 3600,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> Self:
        """Connect to ``url`` and check that Redis answers (fails fast if it does not).
        ``memory://NAME`` opens the embedded in-process store instead."""
        if url.startswith("memory://"):
            return cls(
                embedded_client(url),
                prefix=prefix,
                retention_seconds=retention_seconds,
                clock=clock,
            )
        try:
            client = aioredis.Redis.from_url(
                check_redis_url(url),
                decode_responses=True,
                socket_connect_timeout=timeout,
                health_check_interval=30,
            )
        except ValueError as exc:
            raise StoreError(f"invalid Redis URL: {exc}") from None
        try:
            await cast(Awaitable[bool], client.ping())
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"cannot connect to Redis at {mask_url(url)}: {exc}") from exc
        return cls(client, prefix=prefix, retention_seconds=retention_seconds, clock=clock)

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
        """Publish definitions; each version stays readable for the runs pinned to it."""
        current = {f"{s.kind}:{s.name}": s.model_dump_json() for s in specs}
        versions = {f"{s.kind}:{s.name}:{s.version}": s.model_dump_json() for s in specs}
        pipe = self._redis.pipeline(transaction=True)
        if current:
            pipe.hset(self.keys.specs, mapping=current)
            pipe.hset(self.keys.spec_versions, mapping=versions)
        if default_flow:
            pipe.hset(self.keys.meta, "default_flow", default_flow)
        if default_block:
            pipe.hset(self.keys.meta, "default_block", default_block)
        await self._call("register_specs", pipe.execute())

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
        created, run_id, state = await self._call(
            "create_run",
            self._pipelined(
                self._create,
                keys=self.keys.with_timers(rid),
                args=[
                    self.keys.prefix,
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
        written = RunFields.of(change.fields)
        fields = [[name, _dumps(value)] for name, value in written.stored()]
        if change.step_name is not None:
            fields.append([Field.STEP_NAME, change.step_name])
        if terminal:
            fields.append([Field.FINISHED_AT, repr(round(change.now, 6))])
        expect = change.expect
        phase = new.phase or (Phase.DONE if terminal else None)
        if phase is None:
            raise ValueError("a transition to an active state needs a phase")
        rid = change.run_id
        argument = {
            "prefix": self.keys.prefix,
            "run_id": rid,
            "cause": change.cause,
            "now": repr(change.now),
            "retention_ms": self.retention_ms if terminal else 0,
            "expect": {
                "states": sorted({expect.state.value, *(s.value for s in change.also_states)}),
                "step": _any(expect.step),
                "attempt": _any(expect.attempt),
                "phase": "*" if expect.phase is None else expect.phase.value,
            },
            "new": {
                "state": new.state.value,
                "step": _any(new.step),
                "attempt": _any(new.attempt),
                "phase": phase.value,
            },
            "fields": fields,
            "events": [_dumps(e.to_storage()) for e in change.events],
            "statuses": list(change.statuses),
            "timers_add": [[member, str(due_ms(due))] for member, due in change.timers_add],
            "timers_remove": list(change.timers_remove),
            "clear_timers": change.clear_timers,
            "ignored": _dumps(change.ignored.to_storage()) if change.ignored else "",
        }
        reply = await self._call(
            "transition",
            self._pipelined(
                self._transition,
                keys=[
                    self.keys.run(rid),
                    self.keys.events(rid),
                    self.keys.statuses(rid),
                    self.keys.timers,
                    self.keys.run_timers(rid),
                ],
                args=[_dumps(argument)],
            ),
        )
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

    async def claim_timers(self, now: float, lease: float, limit: int) -> list[tuple[str, int]]:
        """Claim due timers with a lease; returns (member, lease end ms) pairs."""
        lease_ms = due_ms(now + lease)
        raw = await self._call(
            "claim_timers",
            self._claim(keys=[self.keys.timers], args=[due_ms(now), lease_ms, limit]),
        )
        return [(raw[i], lease_ms) for i in range(0, len(raw), 2)]

    async def release_timer(self, member: str, lease_ms: int) -> None:
        """Remove a handled timer unless it was set again meanwhile."""
        run_id = member.split("|", 1)[0]
        await self._call(
            "release_timer",
            self._release(
                keys=[self.keys.timers, self.keys.run_timers(run_id)], args=[member, lease_ms]
            ),
        )

    async def next_timer_due(self) -> float | None:
        """Due time of the earliest timer (seconds), or None when there is none."""
        first = await self._call(
            "next_timer", self._redis.zrange(self.keys.timers, 0, 0, withscores=True)
        )
        return float(first[0][1]) / 1000 if first else None

    async def record_event(self, run_id: str, event: Event, status: str | None) -> RunState | None:
        """Append an event and a status; None if the run does not exist."""
        state = await self._call(
            "record_event",
            self._pipelined(
                self._record,
                keys=[self.keys.run(run_id), self.keys.events(run_id), self.keys.statuses(run_id)],
                args=[_dumps(event.to_storage()), status or "", repr(event.time)],
            ),
        )
        return RunState(state) if state else None

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with its statuses, or None."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.run(run_id))
        pipe.smembers(self.keys.statuses(run_id))
        values, statuses = await self._call("get_run", pipe.execute())
        return _record(run_id, values, statuses, self.clock())

    async def _get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for rid in run_ids:
            pipe.hgetall(self.keys.run(rid))
            pipe.smembers(self.keys.statuses(rid))
        rows = await self._call("get_runs", pipe.execute())
        now = self.clock()
        records = (_record(rid, rows[2 * i], rows[2 * i + 1], now) for i, rid in enumerate(run_ids))
        return [r for r in records if r is not None]

    async def position(self, run_id: str) -> Position | None:
        """Where the run is now, or None if it does not exist: one read, pipelined with the
        other script calls of this loop turn."""
        state, step, attempt, phase = await self._call(
            "position", self._pipelined(self._position, keys=[self.keys.run(run_id)], args=[])
        )
        if not state:
            return None
        return Position(
            RunState(state),
            int(step or 0),
            int(attempt or 0),
            Phase(phase) if phase else (Phase.DONE if RunState(state).terminal else None),
        )

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

    async def find_by_key(self, key: str) -> str | None:
        """The run id started with ``key``, if that run still exists."""
        run_id = await self._call("find_by_key", self._redis.get(self.keys.by_key(key)))
        if run_id and await self._call("exists", self._redis.exists(self.keys.run(run_id))):
            return str(run_id)
        return None

    async def get_events(self, run_id: str) -> list[Event]:
        """The run's history, oldest first, ``seq`` numbered from 1. Step names and
        services, which the stored events leave out, come from the run's flow version."""
        raw = await self._call("get_events", self._redis.lrange(self.keys.events(run_id), 0, -1))
        events = [Event.from_storage(i, orjson.loads(r)) for i, r in enumerate(raw, start=1)]
        if any(e.step is not None and e.step_name is None for e in events):
            kind, flow, version = await self._call(
                "get_events", self._redis.hmget(self.keys.run(run_id), ["kind", "flow", "version"])
            )
            spec = await self.get_spec(kind or "flow", flow or "", version) if flow else None
            if spec is not None:
                events = [_named(e, spec, run_id) for e in events]
        return events

    async def list_runs(
        self, *, flow: str | None = None, state: RunState | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Most recent first. ``flow`` matches flows and single-block runs of that name.
        Without a filter, the runs that changed state last come first."""
        if state is None and flow is None:
            return await self._recent(limit)
        index = (
            self.keys.state_index(state.value)
            if state is not None
            else self.keys.flow_index(flow or "")
        )
        found: list[RunRecord] = []
        start, page = 0, max(limit, 50)
        while len(found) < limit:
            ids = await self._call(
                "list_runs", self._redis.zrevrange(index, start, start + page - 1)
            )
            if not ids:
                break
            start += page
            for record in await self._get_runs(ids):
                if (flow is None or record.flow == flow) and (
                    state is None or record.state is state
                ):
                    found.append(record)
        return found[:limit]

    async def _recent(self, limit: int) -> list[RunRecord]:
        """The newest entries of every state index, merged (no index of all runs is kept:
        that would cost every finished run another sorted-set entry)."""
        pipe = self._redis.pipeline(transaction=False)
        for state in RunState:
            pipe.zrevrange(self.keys.state_index(state.value), 0, limit - 1, withscores=True)
        pages = await self._call("list_runs", pipe.execute())
        entries = sorted(((score, rid) for page in pages for rid, score in page), reverse=True)[
            :limit
        ]
        return await self._get_runs([rid for _, rid in entries])

    async def wait_finished(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Wait for the run's 'finished' announcement (subscribing before the first read)."""
        async with self._subscription() as messages:
            record = await self.get_run(run_id)
            if record is None:
                raise RunNotFound(f"run {run_id!r} not found")
            if record.done:
                return record
            async with asyncio.timeout(timeout):
                while True:
                    announced = await messages()
                    if announced == run_id:
                        final = await self.get_run(run_id)
                        if final is not None and final.done:
                            return final

    @asynccontextmanager
    async def _subscription(self) -> AsyncIterator[Callable[[], Awaitable[str]]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await self._call("subscribe", pubsub.subscribe(self.keys.finished_channel))

        async def next_message() -> str:
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is not None and msg.get("type") == "message":
                    return str(msg["data"])

        try:
            yield next_message
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stranded(self, older_than: float, limit: int = 1000) -> list[RunRecord]:
        """PENDING runs, and RUNNING/COMPENSATING runs in phase QUEUED, last changed before
        ``older_than`` (oldest first, at most ``limit`` looked at per state)."""
        found: list[RunRecord] = []
        for state in (RunState.PENDING, RunState.RUNNING, RunState.COMPENSATING):
            ids = await self._call(
                "stranded",
                self._redis.zrangebyscore(
                    self.keys.state_index(state.value), "-inf", older_than, start=0, num=limit
                ),
            )
            for record in await self._get_runs(ids) if ids else []:
                queued = record.state is RunState.PENDING or record.phase is Phase.QUEUED
                if queued and record.updated_at <= older_than:
                    found.append(record)
        return found

    def replicas(self, namespace: str) -> RedisReplicas:
        """The orchestrator replicas announced for an AMQP namespace."""
        return RedisReplicas(self._redis, namespace)

    async def count_recovery(self, run_id: str, scope: str) -> int:
        """Count one more re-sent START/RESUME of a stranded run at position ``scope``
        (0: no such run)."""
        script = self._redis.register_script(_COUNT_RECOVERY)
        count = await self._call(
            "count_recovery", script(keys=[self.keys.run(run_id)], args=[f"recoveries:{scope}"])
        )
        return int(count)

    async def housekeeping(self, now: float | None = None) -> int:
        """Remove index entries whose run has expired; returns how many were removed."""
        now = self.clock() if now is None else now
        horizon = now - self.retention_ms / 1000
        removed = 0
        indexes = [self.keys.state_index(s.value) for s in TERMINAL_STATES]
        indexes += [
            k async for k in self._redis.scan_iter(match=self.keys.flow_index("*"), count=1000)
        ]
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

_COMMAND_EVENTS = {
    EventKind.STEP_DISPATCHED: (Lane.RUN, ""),
    EventKind.STEP_COMPLETED: (Lane.RUN, ":reply"),
    EventKind.STEP_FAILED: (Lane.RUN, ":reply"),
    EventKind.COMPENSATION_DISPATCHED: (Lane.COMPENSATE, ""),
    EventKind.COMPENSATION_COMPLETED: (Lane.COMPENSATE, ":reply"),
    EventKind.COMPENSATION_FAILED: (Lane.COMPENSATE, ":reply"),
}


def _named(event: Event, spec: FlowSpec, run_id: str) -> Event:
    """Fill in what stored events leave out: step name, service, command/reply id."""
    step = spec.step(event.step) if event.step is not None else None
    if step is None or event.step_name is not None:
        return event
    message_id = event.message_id
    if message_id is None and event.kind in _COMMAND_EVENTS and event.attempt:
        lane, suffix = _COMMAND_EVENTS[event.kind]
        message_id = command_message_id(run_id, step.index, event.attempt, lane) + suffix
    return dataclasses.replace(
        event,
        step_name=step.name,
        component=event.component or step.service,
        message_id=message_id,
    )


def _loads(raw: str | None) -> Any:
    return orjson.loads(raw) if raw else None


def _float(raw: str | None) -> float | None:
    value = _loads(raw)
    return float(value) if isinstance(value, int | float) else None


def _any(value: int | None) -> str:
    """A position member as the scripts compare it: its decimal string, '*' for any."""
    return "*" if value is None else str(value)


def _record(run_id: str, row: dict[str, str], statuses: set[str], now: float) -> RunRecord | None:
    if not row.get("state"):
        return None
    error = _loads(row.get("error"))
    state = RunState(row["state"])
    deadline = _float(row.get("deadline"))
    finished_at = _float(row.get("finished_at"))
    expired = deadline is not None and not state.terminal and now >= deadline
    if expired:
        # the deadline timer has not fired yet, but the run is over: report it so
        state, finished_at = RunState.TIMED_OUT, deadline
        error = error or {
            "type": "RunDeadlineExceeded",
            "message": "run deadline exceeded",
            "retryable": False,
        }
    return RunRecord(
        run_id=run_id,
        kind=row.get("kind") or "flow",
        flow=row.get("flow") or "",
        version=row.get("version") or "",
        state=state,
        step=int(row.get("step") or 0),
        step_name=row.get("step_name"),
        attempt=int(row.get("attempt") or 0),
        steps_total=int(row.get("steps_total") or 0),
        created_at=float(row.get("created_at") or 0),
        updated_at=float(row.get("updated_at") or row.get("finished_at") or 0),
        phase=Phase(row["phase"]) if row.get("phase") else (Phase.DONE if state.terminal else None),
        finished_at=finished_at,
        deadline=deadline,
        key=row.get("key") or None,
        input=_loads(row.get("input")),
        step_input=_loads(row.get("step_input")),
        result=_loads(row.get("result")),
        error=ErrorInfo.from_stored(error) if error else None,
        statuses=frozenset(statuses),
        expired=expired,
        hook_pending=_loads(row.get("hook_pending")) is True,
        outputs={
            int(name[4:]): _loads(value) for name, value in row.items() if name.startswith("out:")
        },
    )
