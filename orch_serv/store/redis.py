"""The Redis run store: every transition is one Lua script call (see ``lua/``)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Self, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orch_serv.constants import TERMINAL_STATES, EventKind, RunState
from orch_serv.exceptions import RunNotFound, StoreError
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import (
    CreateResult,
    Event,
    NewRun,
    Outcome,
    Position,
    RunRecord,
    Transition,
    TransitionResult,
)
from orch_serv.store.keys import Keys

_RUN_FIELDS = (
    "kind",
    "flow",
    "version",
    "state",
    "step",
    "step_name",
    "attempt",
    "steps_total",
    "created_at",
    "updated_at",
    "finished_at",
    "key",
    "input",
    "step_input",
    "result",
    "error",
)


def _lua(name: str) -> str:
    return resources.files("orch_serv.store").joinpath("lua", name).read_text()


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
    ) -> None:
        self._redis = client
        self.keys = Keys(prefix)
        self.retention_ms = retention_seconds * 1000
        self._create = client.register_script(_lua("create_run.lua"))
        self._transition = client.register_script(_lua("transition.lua"))
        self._record = client.register_script(_lua("record_event.lua"))
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        prefix: str = "orch_serv",
        retention_seconds: int = 7 * 24 * 3600,
        timeout: float = 10.0,
    ) -> Self:
        """Connect to ``url`` and check that Redis answers (fails fast if it does not)."""
        client = aioredis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=timeout, health_check_interval=30
        )
        try:
            await cast(Awaitable[bool], client.ping())
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StoreError(f"cannot connect to Redis at {url}: {exc}") from exc
        return cls(client, prefix=prefix, retention_seconds=retention_seconds)

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
            "kind": spec.kind,
            "flow": spec.name,
            "version": spec.version,
            "steps_total": len(spec.steps),
            "input": _dumps(new.input),
            "key": new.key or "",
            "step_name": spec.steps[0].name,
        }
        flat: list[Any] = [x for kv in fields.items() for x in kv]
        created, run_id, state = await self._call(
            "create_run",
            self._create(
                keys=[self.keys.run(new.run_id), self.keys.events(new.run_id)],
                args=[
                    self.keys.prefix,
                    new.run_id,
                    new.key or "",
                    repr(new.now),
                    spec.name,
                    _dumps(event.to_json_dict()),
                    *flat,
                ],
            ),
        )
        return CreateResult(bool(int(created)), run_id, RunState(state))

    async def transition(self, change: Transition) -> TransitionResult:
        """Apply one compare-and-set transition (one Lua call, one round trip)."""
        terminal = change.new.state in TERMINAL_STATES
        fields: list[Any] = []
        for name, value in change.fields.items():
            fields += [name, value if isinstance(value, str) else _dumps(value)]
        if change.step_name is not None:
            fields += ["step_name", change.step_name]
        if terminal:
            fields += ["finished_at", repr(change.now)]
        events = [_dumps(e.to_json_dict()) for e in change.events]
        ignored = _dumps(change.ignored.to_json_dict()) if change.ignored else ""
        rid = change.run_id
        reply = await self._call(
            "transition",
            self._transition(
                keys=[self.keys.run(rid), self.keys.events(rid), self.keys.statuses(rid)],
                args=[
                    self.keys.prefix,
                    rid,
                    change.expect.state.value,
                    change.expect.step,
                    change.expect.attempt,
                    change.new.state.value,
                    change.new.step,
                    change.new.attempt,
                    change.cause,
                    repr(change.now),
                    self.retention_ms if terminal else 0,
                    ignored,
                    len(fields) // 2,
                    *fields,
                    len(events),
                    *events,
                    len(change.statuses),
                    *change.statuses,
                ],
            ),
        )
        outcome = Outcome(reply[0])
        if outcome is Outcome.APPLIED or outcome is Outcome.NOT_FOUND:
            return TransitionResult(outcome)
        current = Position(RunState(reply[1]), int(reply[2]), int(reply[3]))
        return TransitionResult(outcome, current, reply[4])

    async def record_event(self, run_id: str, event: Event, status: str | None) -> RunState | None:
        """Append an event and a status; None if the run does not exist."""
        state = await self._call(
            "record_event",
            self._record(
                keys=[self.keys.run(run_id), self.keys.events(run_id), self.keys.statuses(run_id)],
                args=[_dumps(event.to_json_dict()), status or "", repr(event.time)],
            ),
        )
        return RunState(state) if state else None

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run with its statuses, or None."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(self.keys.run(run_id), list(_RUN_FIELDS))
        pipe.smembers(self.keys.statuses(run_id))
        values, statuses = await self._call("get_run", pipe.execute())
        return _record(run_id, values, statuses)

    async def _get_runs(self, run_ids: Sequence[str]) -> list[RunRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for rid in run_ids:
            pipe.hmget(self.keys.run(rid), list(_RUN_FIELDS))
            pipe.smembers(self.keys.statuses(rid))
        rows = await self._call("get_runs", pipe.execute())
        records = (_record(rid, rows[2 * i], rows[2 * i + 1]) for i, rid in enumerate(run_ids))
        return [r for r in records if r is not None]

    async def find_by_key(self, key: str) -> str | None:
        """The run id started with ``key``, if that run still exists."""
        run_id = await self._call("find_by_key", self._redis.get(self.keys.by_key(key)))
        if run_id and await self._call("exists", self._redis.exists(self.keys.run(run_id))):
            return str(run_id)
        return None

    async def get_events(self, run_id: str) -> list[Event]:
        """The run's history, oldest first, ``seq`` numbered from 1."""
        raw = await self._call("get_events", self._redis.lrange(self.keys.events(run_id), 0, -1))
        return [Event.from_json_dict(i, orjson.loads(r)) for i, r in enumerate(raw, start=1)]

    async def list_runs(
        self, *, flow: str | None = None, state: RunState | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Most recent first. ``flow`` matches flows and single-block runs of that name."""
        if state is not None:
            index = self.keys.state_index(state.value)
        elif flow is not None:
            index = self.keys.flow_index(flow)
        else:
            index = self.keys.all_index
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

    async def housekeeping(self, now: float | None = None) -> int:
        """Remove index entries whose run has expired; returns how many were removed."""
        now = time.time() if now is None else now
        horizon = now - self.retention_ms / 1000
        removed = 0
        indexes = [self.keys.all_index] + [self.keys.state_index(s.value) for s in TERMINAL_STATES]
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


def _loads(raw: str | None) -> Any:
    return orjson.loads(raw) if raw else None


def _record(run_id: str, values: list[str | None], statuses: set[str]) -> RunRecord | None:
    row = dict(zip(_RUN_FIELDS, values, strict=True))
    if row["state"] is None:
        return None
    error = _loads(row["error"])
    return RunRecord(
        run_id=run_id,
        kind=row["kind"] or "flow",
        flow=row["flow"] or "",
        version=row["version"] or "",
        state=RunState(row["state"]),
        step=int(row["step"] or 0),
        step_name=row["step_name"],
        attempt=int(row["attempt"] or 0),
        steps_total=int(row["steps_total"] or 0),
        created_at=float(row["created_at"] or 0),
        updated_at=float(row["updated_at"] or 0),
        finished_at=float(row["finished_at"]) if row["finished_at"] else None,
        key=row["key"] or None,
        input=_loads(row["input"]),
        step_input=_loads(row["step_input"]),
        result=_loads(row["result"]),
        error=ErrorInfo.model_validate(error) if error else None,
        statuses=frozenset(statuses),
    )
