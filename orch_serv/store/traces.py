"""Traces: runs without a flow, which a client records event by event (the Oslo status-api
surface, ``POST /status-api/status``). A trace is stored in the layout of every run (hash,
event list, state and flow indexes), so ``orch-serv status ID --history``, ``orch-serv runs``
and the native API show it like any run:

* ``kind`` is ``trace``, ``flow`` the trace's domain (``dataset``), ``input`` the item it
  was created with; no steps, no timers, no deadline;
* it is RUNNING (phase STARTED: nothing waits for a dispatch, so the housekeeping never
  takes it for a stranded run) until an event with ``trace_status`` FINISHED ends it,
  SUCCEEDED or FAILED, through the ordinary compare-and-set transition (which also starts
  the retention clock and announces the end);
* its events are status events whose body is the Oslo item (see
  ``orch_serv.api.oslo_items``).

File paths an event records (``s3_path``, lineage ``files_incoming``/``files_outgoing``) are
indexed under ``Keys.path_index``; :meth:`Traces.find_by_path` answers status-from-path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.exceptions import RedisError

from orch_serv.constants import Phase, RunState
from orch_serv.exceptions import StoreError
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import Event, Outcome, Position, Transition
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.redis_base import dumps, lua, merged
from orch_serv.store.scripts import register
from orch_serv.store.shape import Field, RunFields

#: The ``kind`` of a trace run.
TRACE_KIND: Final = "trace"
#: How many runs of one path :meth:`Traces.find_by_path` looks at (newest first).
PATH_CANDIDATES: Final = 100


@dataclass(frozen=True, slots=True)
class NewTrace:
    """A trace to create: its id, domain (stored as the run's ``flow``), the item it was
    created with (the run's ``input``), its first event and that event's file paths."""

    run_id: str
    domain: str
    item: dict[str, Any]
    event: Event
    paths: Sequence[str] = ()


class Traces:
    """Trace runs and the path index, over a Redis run store."""

    def __init__(self, store: RedisRunStore) -> None:
        self.store = store
        self.keys = store.keys
        self._redis = store.redis
        self._create = register(self._redis, lua("create_trace.lua"))

    async def create(self, trace: NewTrace) -> bool:
        """Create the trace, RUNNING with its first event; False if the id is taken."""
        rid, now = trace.run_id, repr(round(trace.event.time, 6))
        fields = {
            Field.STATE: RunState.RUNNING.value,
            Field.STEP: "0",
            Field.ATTEMPT: "0",
            Field.PHASE: Phase.STARTED.value,
            Field.KIND: TRACE_KIND,
            Field.FLOW: trace.domain,
            Field.STEPS_TOTAL: "0",
            Field.CREATED_AT: now,
            Field.UPDATED_AT: now,
            Field.INPUT: dumps(trace.item),
        }
        shard = self.keys.of_run(rid)
        keys = [
            shard.run(rid),
            shard.events(rid),
            shard.state_index(RunState.RUNNING.value),
            shard.flow_index(trace.domain),
            *(shard.path_index(p) for p in trace.paths),
        ]
        args = [rid, now, dumps(trace.event.to_storage())]
        args += [x for pair in fields.items() for x in pair]
        created = await self._call("create_trace", self._create(keys=keys, args=args))
        return bool(int(created))

    async def finish(
        self,
        run_id: str,
        event: Event,
        *,
        failed: bool,
        error: ErrorInfo | None = None,
        paths: Sequence[str] = (),
    ) -> Outcome:
        """End an active trace with ``event`` (SUCCEEDED, or FAILED with ``error``): one
        transition, which applies only while the run is active. APPLIED, STALE (it was
        finished already: the caller records the event as a plain one) or NOT_FOUND. The
        paths are indexed first, so that a crash in between leaves at worst an entry that
        points at a run which exists."""
        await self.index(run_id, paths, event.time)
        state = RunState.FAILED if failed else RunState.SUCCEEDED
        change = Transition.any_active(
            run_id=run_id,
            new=Position(state, None, None),
            cause=f"{run_id}:finish:{event.message_id}",
            now=event.time,
            fields=RunFields(error=error) if failed else RunFields(),
            events=[event],
        )
        return (await self.store.transition(change)).outcome

    async def index(self, run_id: str, paths: Sequence[str], when: float) -> None:
        """Record that run ``run_id`` mentioned ``paths`` at ``when``."""
        if not paths:
            return
        shard = self.keys.of_run(run_id)
        pipe = self._redis.pipeline(transaction=False)
        for path in paths:
            pipe.zadd(shard.path_index(path), {run_id: when})
        await self._call("index_paths", pipe.execute())

    async def runs_of_path(self, path: str) -> list[str]:
        """The live runs that recorded ``path``, most recently recorded first (entries of
        runs that expired are removed on the way)."""
        pipe = self._redis.pipeline(transaction=False)
        for shard in self.keys.every_shard:
            pipe.zrevrange(shard.path_index(path), 0, PATH_CANDIDATES - 1, withscores=True)
        pages = await self._call("runs_of_path", pipe.execute())
        ids = merged(pages)[:PATH_CANDIDATES]
        if not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for rid in ids:
            pipe.exists(self.keys.run(rid))
        alive = await self._call("runs_of_path", pipe.execute())
        gone = [rid for rid, ok in zip(ids, alive, strict=True) if not ok]
        if gone:
            pipe = self._redis.pipeline(transaction=False)
            for rid in gone:
                pipe.zrem(self.keys.of_run(rid).path_index(path), rid)
            await self._call("runs_of_path", pipe.execute())
        return [rid for rid, ok in zip(ids, alive, strict=True) if ok]

    async def find_by_path(self, path: str) -> str | None:
        """The run ``path`` leads to: the live run that recorded it last, else the run
        started with ``path`` as its key, else None."""
        runs = await self.runs_of_path(path)
        if runs:
            return runs[0]
        return await self.store.find_by_key(path)

    @staticmethod
    async def _call(what: str, op: Awaitable[Any]) -> Any:
        try:
            return await op
        except (RedisError, OSError) as exc:
            raise StoreError(f"redis {what} failed: {exc}") from exc


def is_trace(kind: str) -> bool:
    """True for the kind of a trace run."""
    return kind == TRACE_KIND


__all__ = ["PATH_CANDIDATES", "TRACE_KIND", "NewTrace", "Traces", "is_trace"]
