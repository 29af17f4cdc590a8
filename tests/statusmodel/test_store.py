"""Instances and statuses on the real Redis: the lazy timeout (with an injected time), one
atomic check-and-set under concurrency, flow runs held to their model, published models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import cast

import pytest

from orch_serv.constants import EventKind, RunState
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.settings import Settings
from orch_serv.statusmodel import TWO_POINT_LINE_TASK, Code, Status, StatusModel
from orch_serv.statusmodel.published import PublishedModels
from orch_serv.store.base import Event, NewRun
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.statuses import FINISH_FIELD, StatusStore
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

THREE = StatusModel("THREE", statuses=[Status("A"), Status("B"), Status("C")])


class Clock:
    """The time the store reads (an injected clock: no test waits for time to pass)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def statuses(settings: Settings) -> AsyncIterator[StatusStore]:
    store = await RedisRunStore.connect(REDIS_URL, prefix=settings.key_prefix, clock=Clock())
    try:
        yield StatusStore(store)
    finally:
        await store.close()


async def _kinds(statuses: StatusStore, token: str) -> list[EventKind]:
    return [e.kind for e in await statuses.store.get_events(token)]


async def test_an_instance_is_a_run(statuses: StatusStore) -> None:
    token = await statuses.create(TWO_POINT_LINE_TASK, 600)
    record = await statuses.store.get_run(token)
    assert record is not None and record.kind == "object"
    assert (record.flow, record.version) == (TWO_POINT_LINE_TASK.name, TWO_POINT_LINE_TASK.version)
    assert record.state is RunState.RUNNING and record.deadline == 1600.0
    assert await _kinds(statuses, token) == [EventKind.RUN_CREATED]
    listed = await statuses.store.list_runs(flow=TWO_POINT_LINE_TASK.name)
    assert [r.run_id for r in listed] == [token]
    due = await statuses.store.next_timer_due()
    assert due == 1600.0  # the deadline is a timer of the shared timer set


async def test_the_timeout_counts_from_creation_lazily(statuses: StatusStore) -> None:
    clock = statuses.clock
    assert isinstance(clock, Clock)
    token = await statuses.create(TWO_POINT_LINE_TASK, 10)
    clock.now = 1009.0
    assert (await statuses.set_status(token, "STARTED")).code is Code.SUCCESS
    clock.now = 1009.999
    before = await statuses.touch(token)
    assert before.finished == "" and before.state == "RUNNING"
    clock.now = 1010.0
    refused = await statuses.set_status(token, "FINISHED")  # >=, as Statusek
    assert (refused.code, refused.finished) == (Code.INSTANCE_IS_FINISHED, "TIMEOUT")
    record = await statuses.store.get_run(token)
    assert record is not None and record.state is RunState.TIMED_OUT
    assert record.error is not None and record.error.type == "RunDeadlineExceeded"
    assert await _kinds(statuses, token) == [
        EventKind.RUN_CREATED,
        EventKind.STATUS,
        EventKind.RUN_TIMED_OUT,
    ]
    assert await statuses.store.next_timer_due() is None  # its deadline timer is gone
    assert await statuses.store.redis.pttl(statuses.keys.run(token)) > 0  # kept for retention
    clock.now = 5000.0
    again = await statuses.touch(token)  # reads keep working
    assert again.finished == "TIMEOUT" and await _kinds(statuses, token) == [
        EventKind.RUN_CREATED,
        EventKind.STATUS,
        EventKind.RUN_TIMED_OUT,
    ]


async def test_a_zero_timeout_ends_at_the_first_access(statuses: StatusStore) -> None:
    token = await statuses.create(TWO_POINT_LINE_TASK, 0, now=1000.0)
    outcome = await statuses.check(token, "STARTED", now=1000.0)
    assert (outcome.code, outcome.finished) == (Code.INSTANCE_IS_FINISHED, "TIMEOUT")


async def test_no_timeout_never_ends(statuses: StatusStore) -> None:
    token = await statuses.create(TWO_POINT_LINE_TASK, None, now=1000.0)
    assert (await statuses.touch(token, now=1e12)).finished == ""


async def test_an_unknown_token(statuses: StatusStore) -> None:
    for outcome in (
        await statuses.touch("nope"),
        await statuses.check("nope", "STARTED"),
        await statuses.set_status("nope", "STARTED"),
    ):
        assert outcome.code is Code.INSTANCE_TOKEN_IS_NOT_FOUND and not outcome.found


async def test_concurrent_sets_of_one_status_record_it_once(statuses: StatusStore) -> None:
    token = await statuses.create(TWO_POINT_LINE_TASK, None)
    outcomes = await asyncio.gather(*(statuses.set_status(token, "STARTED") for _ in range(50)))
    codes = [o.code for o in outcomes]
    assert codes.count(Code.SUCCESS) == 1
    assert codes.count(Code.STATUS_IS_ALREADY_SET) == 49
    assert (await _kinds(statuses, token)).count(EventKind.STATUS) == 1


async def test_the_last_mandatory_statuses_at_once_finish_once(statuses: StatusStore) -> None:
    for _ in range(20):
        token = await statuses.create(THREE, None)
        await statuses.set_status(token, "A")
        outcomes = await asyncio.gather(
            statuses.set_status(token, "B"), statuses.set_status(token, "C")
        )
        assert [o.code for o in outcomes] == [Code.SUCCESS, Code.SUCCESS]
        assert sorted(o.finished for o in outcomes) == ["", "ALL_MANDATORY_STATUSES_ARE_SET"]
        kinds = await _kinds(statuses, token)
        assert kinds.count(EventKind.RUN_SUCCEEDED) == 1 and kinds[-1] is EventKind.RUN_SUCCEEDED
        record = await statuses.store.get_run(token)
        assert record is not None and record.state is RunState.SUCCEEDED


async def test_a_stop_status_finishes(statuses: StatusStore) -> None:
    model = StatusModel(
        "STOPPING", statuses=[Status("A"), Status("X", "STOP-STATUS", after=["A"]), Status("B")]
    )
    token = await statuses.create(model, None)
    await statuses.set_status(token, "A")
    outcome = await statuses.set_status(token, "X", message="given up")
    assert (outcome.code, outcome.finished) == (Code.SUCCESS, "STOP_STATUS_IS_SET")
    refused = await statuses.set_status(token, "B")
    assert (refused.code, refused.finished) == (Code.INSTANCE_IS_FINISHED, "STOP_STATUS_IS_SET")
    events = await statuses.status_events(token)
    assert [(e.name, e.message) for e in events] == [("A", None), ("X", "given up")]
    finished = (await statuses.store.get_events(token))[-1]
    assert finished.kind is EventKind.RUN_SUCCEEDED and finished.reason == "STOP_STATUS_IS_SET"


async def test_a_refusal_is_recorded_when_asked(statuses: StatusStore) -> None:
    token = await statuses.create(TWO_POINT_LINE_TASK, None)
    refusal = Event(kind=EventKind.STATUS_REFUSED, time=1.0, name="FINISHED")
    outcome = await statuses.set_status(token, "FINISHED", record_refusal=refusal)
    assert outcome.code is Code.NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET
    last = (await statuses.store.get_events(token))[-1]
    assert last.kind is EventKind.STATUS_REFUSED
    assert (last.name, last.reason) == ("FINISHED", "NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET")


async def test_a_flow_run_is_held_to_its_flows_model(statuses: StatusStore) -> None:
    step = StepSpec(index=0, name="s", block="s", service="svc", command="s")
    spec = FlowSpec(name="shipping", steps=(step,), status_model="THREE").with_version()
    await statuses.store.register_specs([spec], default_flow=None, default_block=None)
    await statuses.models.publish([THREE])
    await statuses.store.create_run(NewRun("run-1", spec, {}, now=1.0))
    governed = await statuses.governed("run-1")
    assert governed.model == THREE and not governed.standalone
    for name in ("A", "B"):
        assert (await statuses.set_status("run-1", name)).code is Code.SUCCESS
    assert (await statuses.set_status("run-1", "A")).code is Code.STATUS_IS_ALREADY_SET
    done = await statuses.set_status("run-1", "C")
    assert done.finished == "ALL_MANDATORY_STATUSES_ARE_SET"
    assert done.state == RunState.PENDING.value  # the flow's own state is left alone
    read = statuses.store.redis.hgetall(statuses.keys.run("run-1"))
    hash_ = await cast(Awaitable[dict[str, str]], read)
    assert hash_[FINISH_FIELD] == "ALL_MANDATORY_STATUSES_ARE_SET"
    assert (await statuses.set_status("run-1", "X")).code is Code.INSTANCE_IS_FINISHED


async def test_a_flow_without_a_model_has_no_statuses_to_check(statuses: StatusStore) -> None:
    step = StepSpec(index=0, name="s", block="s", service="svc", command="s")
    spec = FlowSpec(name="free", steps=(step,)).with_version()
    await statuses.store.register_specs([spec], default_flow=None, default_block=None)
    await statuses.store.create_run(NewRun("run-2", spec, {}, now=1.0))
    governed = await statuses.governed("run-2")
    assert governed.model is None and governed.found
    assert (await statuses.governed("nope")).found is False


async def test_published_models_and_versions(settings: Settings, statuses: StatusStore) -> None:
    published = PublishedModels(statuses.store.redis, settings.key_prefix)
    assert await published.get("2-POINT LINE TASK") == TWO_POINT_LINE_TASK  # built in
    assert await published.get("THREE") is None
    await published.publish([THREE])
    newer = StatusModel("THREE", statuses=[Status("A"), Status("B")])
    fresh = PublishedModels(statuses.store.redis, settings.key_prefix)
    await fresh.publish([newer])
    reader = PublishedModels(statuses.store.redis, settings.key_prefix)
    assert await reader.get("THREE") == newer
    assert await reader.get("THREE", THREE.version) == THREE  # an instance's pinned version
    assert await reader.get("THREE", "000000000000") is None
    assert [m.name for m in await reader.list()] == ["2-POINT LINE TASK", "THREE"]


async def test_an_instance_keeps_its_models_version(statuses: StatusStore) -> None:
    await statuses.models.publish([THREE])
    token = await statuses.create(THREE, None)
    await statuses.models.publish([StatusModel("THREE", statuses=[Status("A")])])
    fresh = StatusStore(statuses.store)
    assert (await fresh.governed(token)).model == THREE
    assert (await fresh.set_status(token, "B")).code is Code.SUCCESS


async def test_global_events(statuses: StatusStore) -> None:
    await statuses.add_global("deploy", now=10.0)
    await statuses.add_global("freeze", now=11.0, keep=1)
    assert await statuses.globals() == [("freeze", 11.0)]


async def test_a_status_lineage_is_indexed_by_path(statuses: StatusStore) -> None:
    token = await statuses.create(TWO_POINT_LINE_TASK, None)
    event = Event(
        kind=EventKind.STATUS, time=5.0, name="STARTED", body={"files_outgoing": ["s3://b/k"]}
    )
    assert (await statuses.set_status(token, "STARTED", event=event)).code is Code.SUCCESS
    index = statuses.keys.of_run(token).path_index("s3://b/k")
    members = await cast(Awaitable[list[str]], statuses.store.redis.zrange(index, 0, -1))
    assert members == [token]
