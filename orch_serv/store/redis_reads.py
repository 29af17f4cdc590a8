"""Reading runs back from Redis: one run, many, by key, their histories, listings, waiting
for a run to finish, and the runs housekeeping must recover."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis.asyncio as aioredis

from orch_serv.constants import EventKind, Lane, Phase, RunState
from orch_serv.exceptions import RunNotFound
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages import ids
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import Event, Position, RunRecord
from orch_serv.store.cluster import is_cluster, node_client
from orch_serv.store.redis_base import RedisBase, merged
from orch_serv.store.shape import Field


class RedisReads(RedisBase):
    """The read side of :class:`~orch_serv.store.redis.RedisRunStore`."""

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

    async def find_by_key(self, key: str) -> str | None:
        """The run id started with ``key``, if that run still exists."""
        run_id = await self._call("find_by_key", self._redis.get(self.keys.by_key(key)))
        if run_id and await self._call("exists", self._redis.exists(self.keys.run(run_id))):
            return str(run_id)
        return None

    async def get_events(self, run_id: str) -> list[Event]:
        """The run's history, oldest first, ``seq`` numbered from 1. Step names and
        services, which the stored events leave out, come from the run's flow version."""
        return await self.events_after(run_id, 0)

    async def events_after(self, run_id: str, after: int, limit: int | None = None) -> list[Event]:
        """The run's events with ``seq`` > ``after`` (at most ``limit``), oldest first and
        named as :meth:`get_events` names them; [] for an unknown run."""
        if limit is not None and limit <= 0:
            return []
        after = max(after, 0)
        stop = -1 if limit is None else after + limit - 1
        raw = await self._call(
            "get_events", self._redis.lrange(self.keys.events(run_id), after, stop)
        )
        events = [
            Event.from_storage(i, orjson.loads(r)) for i, r in enumerate(raw, start=after + 1)
        ]
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
        page = await self.page_runs(
            RunQuery(flow=flow, state=state, scan_max=_NO_SCAN_LIMIT), limit
        )
        return page.records

    async def _recent(self, limit: int) -> list[RunRecord]:
        """The newest entries of every state index, merged (no index of all runs is kept:
        that would cost every finished run another sorted-set entry)."""
        pipe = self._redis.pipeline(transaction=False)
        for shard in self.keys.every_shard:
            for state in RunState:
                pipe.zrevrange(shard.state_index(state.value), 0, limit - 1, withscores=True)
        pages = await self._call("list_runs", pipe.execute())
        return await self._get_runs(merged(pages)[:limit])

    async def page_runs(self, query: RunQuery, limit: int = 50) -> RunPage:
        """One page of runs matching ``query``, in a stable order (see :class:`RunQuery`):
        newest first by creation time (then id), or, filtered by state alone, by the time
        the runs entered that state. At most ``scan_max`` index entries are looked at per
        page: a page can then hold fewer than ``limit`` runs and still have a cursor."""
        lo = "-inf" if query.since is None else repr(query.since)
        shards = self.keys.every_shard
        if query.flow is not None:
            indexes = [shard.flow_index(query.flow) for shard in shards]
        elif query.state is not None:
            indexes = [shard.state_index(query.state.value) for shard in shards]
        else:
            names = sorted(await self.spec_names())
            indexes = [shard.flow_index(n) for n in names for shard in shards]
        by_state = query.flow is None and query.state is not None
        hi = "+inf" if query.until is None or by_state else repr(query.until)
        bound, scanned, batch = query.after, 0, max(limit, 50)
        found: list[RunRecord] = []
        while scanned < query.scan_max:
            entries = await self._entries_below(indexes, bound, lo, hi, batch)
            ids = [rid for _, rid in entries]
            records = {r.run_id: r for r in await self._get_runs(ids)} if ids else {}
            for entry in entries:
                bound, scanned = entry, scanned + 1
                record = records.get(entry[1])
                if record is not None and query.matches(record):
                    found.append(record)
                    if len(found) == limit:
                        return RunPage(found, bound)
            if len(entries) < batch:  # every index is read to its end
                return RunPage(found, None)
        return RunPage(found, bound)

    async def _entries_below(
        self, indexes: list[str], bound: tuple[float, str] | None, lo: str, hi: str, n: int
    ) -> list[tuple[float, str]]:
        """Up to ``n`` (score, id) entries of ``indexes``, highest first, strictly after
        ``bound`` in the order (score desc, id desc), with ``lo`` <= score <= ``hi``."""
        pipe = self._redis.pipeline(transaction=False)
        for index in indexes:
            if bound is not None:
                pipe.zrangebyscore(index, repr(bound[0]), repr(bound[0]), withscores=True)
            top = hi if bound is None else f"({bound[0]!r}"
            pipe.zrevrangebyscore(index, top, lo, start=0, num=n, withscores=True)
        pages = await self._call("page_runs", pipe.execute()) if indexes else []
        entries = {
            (float(score), str(rid))
            for page in pages
            for rid, score in page
            if bound is None or (float(score), str(rid)) < bound
        }
        return sorted(entries, reverse=True)[:n]

    async def spec_names(self) -> set[str]:
        """The name of every flow and block ever registered (any version)."""
        keys = await self._call("spec_names", self._redis.hkeys(self.keys.spec_versions))
        return {str(k).split(":", 1)[1].rsplit(":", 1)[0] for k in keys if str(k).count(":") >= 2}

    async def spec_versions(self, kind: str, name: str) -> list[FlowSpec]:
        """Every registered version of a flow or block (by version string)."""
        pattern = f"{kind}:{_glob_escape(name)}:*"
        found: list[FlowSpec] = []
        async for key, raw in self._redis.hscan_iter(self.keys.spec_versions, match=pattern):
            if str(key).rsplit(":", 1)[0] == f"{kind}:{name}":
                found.append(FlowSpec.model_validate_json(raw))
        return sorted(found, key=lambda s: s.version)

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
        node: aioredis.Redis | None = None
        client = self._redis
        if is_cluster(client):  # the cluster forwards every PUBLISH to every node
            client = node = node_client(client)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await self._call("subscribe", pubsub.subscribe(self.keys.finished_channel))
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            if node is not None:
                await node.aclose()
            raise

        async def next_message() -> str:
            while True:
                msg = await pubsub.get_message(timeout=1.0)
                if msg is not None and msg.get("type") == "message":
                    return str(msg["data"])

        try:
            yield next_message
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            if node is not None:
                await node.aclose()

    async def stranded(self, older_than: float, limit: int = 1000) -> list[RunRecord]:
        """PENDING runs, and RUNNING/COMPENSATING runs in phase QUEUED, last changed before
        ``older_than`` (oldest first: at most ``limit`` entries per state and shard are read,
        and the oldest ``3 * limit`` of them looked at)."""
        found: list[RunRecord] = []
        pipe = self._redis.pipeline(transaction=False)
        for state in (RunState.PENDING, RunState.RUNNING, RunState.COMPENSATING):
            for shard in self.keys.every_shard:
                index = shard.state_index(state.value)
                pipe.zrangebyscore(index, "-inf", older_than, start=0, num=limit, withscores=True)
        pages = await self._call("stranded", pipe.execute())
        ids = merged(pages, highest_first=False)[: 3 * limit]
        if ids:
            for record in await self._get_runs(ids):
                queued = record.state is RunState.PENDING or record.phase is Phase.QUEUED
                if queued and record.updated_at <= older_than:
                    found.append(record)
        return found


#: ``scan_max`` of a listing that reads its indexes to the end (``list_runs``).
_NO_SCAN_LIMIT = 1 << 62


@dataclasses.dataclass(frozen=True, slots=True)
class RunQuery:
    """What :meth:`RedisReads.page_runs` lists: filters, and where the previous page ended.

    The order is (score, run id), highest first, of the index read: the flow index (score:
    creation time) when ``flow`` is given or nothing but the time window is; the state index
    (score: when the run entered the state) when only ``state`` is. ``after`` is the
    (score, run id) of the last entry the previous page looked at."""

    flow: str | None = None
    state: RunState | None = None
    since: float | None = None  #: created at or after (Unix time)
    until: float | None = None  #: created at or before (Unix time)
    after: tuple[float, str] | None = None
    scan_max: int = 5000

    def matches(self, record: RunRecord) -> bool:
        """True when ``record`` passes every filter."""
        return (
            (self.flow is None or record.flow == self.flow)
            and (self.state is None or record.state is self.state)
            and (self.since is None or record.created_at >= self.since)
            and (self.until is None or record.created_at <= self.until)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class RunPage:
    """A page of runs and where the next one starts (None: this was the last)."""

    records: list[RunRecord]
    after: tuple[float, str] | None


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


_COMMAND_EVENTS = {
    EventKind.STEP_DISPATCHED: (Lane.RUN, False),
    EventKind.STEP_COMPLETED: (Lane.RUN, True),
    EventKind.STEP_FAILED: (Lane.RUN, True),
    EventKind.COMPENSATION_DISPATCHED: (Lane.COMPENSATE, False),
    EventKind.COMPENSATION_COMPLETED: (Lane.COMPENSATE, True),
    EventKind.COMPENSATION_FAILED: (Lane.COMPENSATE, True),
}


def _named(event: Event, spec: FlowSpec, run_id: str) -> Event:
    """Fill in what stored events leave out: step name, service, command/reply id."""
    step = spec.step(event.step) if event.step is not None else None
    if step is None or event.step_name is not None:
        return event
    message_id = event.message_id
    if message_id is None and event.kind in _COMMAND_EVENTS and event.attempt:
        lane, reply = _COMMAND_EVENTS[event.kind]
        command = ids.command_id(run_id, step.index, event.attempt, lane)
        message_id = ids.reply_id(command) if reply else command
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


def _record(run_id: str, row: dict[str, str], statuses: set[str], now: float) -> RunRecord | None:
    if not row.get(Field.STATE):
        return None
    error = _loads(row.get(Field.ERROR))
    state = RunState(row[Field.STATE])
    deadline = _float(row.get(Field.DEADLINE))
    finished_at = _float(row.get(Field.FINISHED_AT))
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
        kind=row.get(Field.KIND) or "flow",
        flow=row.get(Field.FLOW) or "",
        version=row.get(Field.VERSION) or "",
        state=state,
        step=int(row.get(Field.STEP) or 0),
        step_name=row.get(Field.STEP_NAME),
        attempt=int(row.get(Field.ATTEMPT) or 0),
        steps_total=int(row.get(Field.STEPS_TOTAL) or 0),
        created_at=float(row.get(Field.CREATED_AT) or 0),
        updated_at=float(row.get(Field.UPDATED_AT) or row.get(Field.FINISHED_AT) or 0),
        phase=Phase(row[Field.PHASE])
        if row.get(Field.PHASE)
        else (Phase.DONE if state.terminal else None),
        finished_at=finished_at,
        deadline=deadline,
        key=row.get(Field.KEY) or None,
        input=_loads(row.get(Field.INPUT)),
        step_input=_loads(row.get(Field.STEP_INPUT)),
        result=_loads(row.get(Field.RESULT)),
        error=ErrorInfo.from_stored(error) if error else None,
        statuses=frozenset(statuses),
        expired=expired,
        hook_pending=_loads(row.get(Field.HOOK_PENDING)) is True,
        outputs={
            int(name.removeprefix(Field.OUTPUT_PREFIX)): _loads(value)
            for name, value in row.items()
            if name.startswith(Field.OUTPUT_PREFIX)
        },
    )


__all__ = ["RedisReads", "RunPage", "RunQuery"]
