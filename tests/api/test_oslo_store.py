"""The store side of the Oslo surface, on the embedded store and the real Redis: trace runs,
the path index that ``record_event`` and the traces write, and its cleanup."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from orch_serv.constants import EventKind, EventStatus, Phase, RunState
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import Event, Outcome
from orch_serv.store.lineage import MAX_PATH_CHARS, MAX_PATHS, lineage_paths
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.traces import NewTrace, Traces
from tests.conftest import REDIS_URL, cleanup, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture(params=["embedded", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RedisRunStore]:
    """A run store on fakeredis or the real Redis, on a key prefix of its own."""
    prefix = unique_name("oslo")
    url = f"memory://{uuid.uuid4().hex}" if request.param == "embedded" else REDIS_URL
    store = await RedisRunStore.connect(url, prefix=prefix, retention_seconds=60)
    yield store
    await store.close()
    if request.param == "redis":
        await cleanup(prefix, prefix)


def status_event(body: object, *, kind: EventKind = EventKind.STATUS, at: float = 100.0) -> Event:
    return Event(kind=kind, time=at, body=body, name="s", message_id=f"m{at}")


async def a_trace(store: RedisRunStore, run_id: str, *paths: str, at: float = 100.0) -> None:
    item = {"domain": "dataset", "trace_status": "STARTED", "trace_event_status": "OK"}
    event = Event(kind=EventKind.STATUS, time=at, body=item, message_id=f"oslo:{run_id}")
    assert await Traces(store).create(NewTrace(run_id, "dataset", item, event, paths))


def test_lineage_paths_are_the_distinct_strings_of_the_lineage_lists() -> None:
    body = {
        "files_incoming": ["a", "b", 3, None, "", {"path": "x"}],
        "files_outgoing": ["b", "c"],
        "s3_path": "d",
        "other": ["e"],
    }
    assert lineage_paths(body, "f", None, "a") == ["a", "b", "c", "d", "f"]
    assert lineage_paths(None, "f") == ["f"]
    assert lineage_paths(["a"]) == []
    assert lineage_paths({"files_incoming": "a"}) == []
    many = {"files_incoming": [str(n) for n in range(MAX_PATHS + 10)]}
    assert len(lineage_paths(many)) == MAX_PATHS
    assert lineage_paths({"files_incoming": ["x" * (MAX_PATH_CHARS + 1)]}) == []


async def test_a_trace_is_a_running_run_of_kind_trace(store: RedisRunStore) -> None:
    await a_trace(store, "t1", "in/a.csv")
    record = await store.get_run("t1")
    assert record is not None
    assert (record.kind, record.flow, record.state, record.phase) == (
        "trace",
        "dataset",
        RunState.RUNNING,
        Phase.STARTED,
    )
    assert record.input == {
        "domain": "dataset",
        "trace_status": "STARTED",
        "trace_event_status": "OK",
    }
    assert [e.kind for e in await store.get_events("t1")] == [EventKind.STATUS]
    assert [r.run_id for r in await store.list_runs(state=RunState.RUNNING)] == ["t1"]
    assert [r.run_id for r in await store.list_runs(flow="dataset")] == ["t1"]
    assert await store.stranded(older_than=10_000.0) == []  # never taken for stranded
    assert await Traces(store).find_by_path("in/a.csv") == "t1"


async def test_a_trace_id_is_never_created_twice(store: RedisRunStore) -> None:
    await a_trace(store, "t1")
    event = Event(kind=EventKind.STATUS, time=1.0, body={}, message_id="oslo:x")
    assert not await Traces(store).create(NewTrace("t1", "other", {}, event))
    record = await store.get_run("t1")
    assert record is not None and record.flow == "dataset"


async def test_finish_ends_an_active_trace_once(store: RedisRunStore) -> None:
    await a_trace(store, "t1")
    traces = Traces(store)
    error = ErrorInfo(type="TraceFailed", message="bad file", retryable=False)
    end = Event(kind=EventKind.STATUS, time=101.0, status=EventStatus.FAILED, message_id="e1")
    outcome = await traces.finish("t1", end, failed=True, error=error, paths=["out/x"])
    again = Event(kind=EventKind.STATUS, time=102.0, message_id="e2")
    assert outcome is Outcome.APPLIED
    assert await traces.finish("t1", again, failed=False) is Outcome.STALE
    assert await traces.finish("nope", again, failed=False) is Outcome.NOT_FOUND
    record = await store.get_run("t1")
    assert record is not None and record.state is RunState.FAILED and record.error == error
    assert await traces.find_by_path("out/x") == "t1"
    assert len(await store.get_events("t1")) == 2


async def test_record_event_indexes_the_lineage_of_a_status_event(store: RedisRunStore) -> None:
    await a_trace(store, "t1")
    lineage = {"files_incoming": ["raw/1"], "files_outgoing": ["clean/1"]}
    assert await store.record_event("t1", status_event(lineage), "s") is RunState.RUNNING
    other = status_event({"files_incoming": ["raw/2"]}, kind=EventKind.HEARTBEAT)
    await store.record_event("t1", other, None)
    await store.record_event("t1", status_event({}), None, paths=["given/1"])
    traces = Traces(store)
    assert await traces.find_by_path("raw/1") == "t1"
    assert await traces.find_by_path("clean/1") == "t1"
    assert await traces.find_by_path("raw/2") is None
    assert await traces.find_by_path("given/1") == "t1"
    assert await store.record_event("nope", status_event({"files_incoming": ["z"]}), None) is None
    assert await traces.find_by_path("z") is None
    assert not await store.redis.exists(store.keys.of_run("nope").path_index("z"))


async def test_the_newest_live_run_of_a_path_wins(store: RedisRunStore) -> None:
    await a_trace(store, "old", "shared.csv", at=100.0)
    await a_trace(store, "new", "shared.csv", at=200.0)
    traces = Traces(store)
    assert await traces.runs_of_path("shared.csv") == ["new", "old"]
    await store.redis.delete(store.keys.run("new"))  # as if its retention had expired
    assert await traces.find_by_path("shared.csv") == "old"
    assert await store.redis.zrange(store.keys.of_run("old").path_index("shared.csv"), 0, -1) == [
        "old"
    ]


async def test_housekeeping_drops_path_entries_of_expired_runs(store: RedisRunStore) -> None:
    await a_trace(store, "gone", "p.csv", at=100.0)
    await a_trace(store, "kept", "p.csv", at=100.0)
    await store.redis.delete(store.keys.run("gone"))
    assert await store.housekeeping(now=100.0 + 3600) >= 1
    assert await store.redis.zrange(store.keys.of_run("kept").path_index("p.csv"), 0, -1) == [
        "kept"
    ]
