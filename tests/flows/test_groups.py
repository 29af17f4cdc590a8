"""Group steps (parallel branches, maps) in virtual time with the test kit: every join policy
with members that succeed, fail, time out, retry and are cancelled; results in order; a
duplicate reply; cancelling the parent; compensating the members of a failed group."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

import pytest

from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.flow.groups import member_id
from orch_serv.orchestrator.waits import wait_reply
from orch_serv.store.groups import join_key
from orch_serv.store.redis import RedisRunStore
from orch_serv.testing import FlowTestKit, KitFactory
from tests.apps.groups import CALLS, UNDONE
from tests.apps.groups import orchestrator as app


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()
    UNDONE.clear()


async def _members(kit: FlowTestKit, run_id: str, step: int, count: int) -> list[Any]:
    return [await kit.running.get(member_id(run_id, step, 1, m)) for m in range(count)]


async def _at_group(kit: FlowTestKit, run_id: str, step: int, started: int) -> None:
    """Wait until the run is at its group step with ``started`` members started."""

    store = kit.running.store
    assert isinstance(store, RedisRunStore)

    async def ready() -> bool:
        join = await cast(
            Awaitable[dict[str, str]], store.redis.hgetall(join_key(store.keys, run_id, step, 1))
        )
        return int(join.get("#s", 0)) >= started

    await kit.until(
        run_id, lambda r: r.step == step and r.phase is Phase.DISPATCHED, skip_time=False
    )
    while not await ready():
        await kit.settle()


async def test_parallel_all_hands_on_a_mapping_by_branch(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("formats", {"text": "Hi"})
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.result == {"wrapped": {"up": {"text": "HI"}, "down": {"wrapped": {"text": "hi"}}}}
    events = await kit.events(record.run_id)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.MEMBERS_STARTED) == 1
    joined = [e for e in events if e.kind is EventKind.GROUP_JOINED]
    assert len(joined) == 1 and joined[0].body == {"ok": True, "members": {"SUCCEEDED": 2}}
    assert [e.step for e in events if e.kind is EventKind.STEP_COMPLETED] == [0, 1, 2]
    up, down = await _members(kit, record.run_id, 1, 2)
    assert (up.flow, down.flow) == ("formats~parallel~up", "formats~parallel~down")
    down_steps = [
        e.step for e in await kit.events(down.run_id) if e.kind is EventKind.STEP_COMPLETED
    ]
    assert down_steps == [0, 1]  # each step of a member completed once


async def test_all_waits_for_every_member_then_fails(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("p_all", {"text": "Hi"})
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "GroupFailed"
    assert "1 of 3 member(s) failed (1 FAILED)" in record.error.message
    assert record.error.details == {"failed": {"third": "FAILED"}, "failed_count": 1}
    states = [m.state for m in await _members(kit, record.run_id, 1, 3)]
    assert states == [RunState.SUCCEEDED, RunState.SUCCEEDED, RunState.FAILED]  # none cancelled


async def test_n_of_m_and_any_succeed_despite_a_failure(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    two = await kit.run("p_n_of_m", {"text": "Hi"})
    assert two.state is RunState.SUCCEEDED, two.error
    inner = two.result["wrapped"]
    assert set(inner) <= {"up", "down"} and len(inner) == 2
    one = await kit.run("p_any", {"text": "Hi"})
    assert one.state is RunState.SUCCEEDED, one.error
    assert 1 <= len(one.result["wrapped"]) <= 2 and "third" not in one.result["wrapped"]


async def test_n_of_m_fails_once_n_is_out_of_reach(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("p_n_of_m_3", {"text": "Hi"})
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "GroupFailed"
    assert record.error.details == {"failed": {"third": "FAILED"}, "failed_count": 1}


async def test_collect_succeeds_with_each_result_or_error(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("p_collect", {"text": "Hi"})
    assert record.state is RunState.SUCCEEDED
    got = record.result["wrapped"]
    assert got["up"] == {"state": "SUCCEEDED", "result": {"text": "HI"}}
    assert got["third"]["state"] == "FAILED"
    assert got["third"]["error"]["message"] == "planned failure"
    numbers = await kit.run("collect", [1, -2])
    assert [e["state"] for e in numbers.result] == ["SUCCEEDED", "FAILED"]
    assert numbers.result[0]["result"] == 2


async def test_a_map_keeps_the_order_and_its_concurrency(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    items = list(range(1, 13))
    record = await kit.run("doubles", items)
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.result == {"wrapped": [2 * i for i in items]}
    events = await kit.events(record.run_id)
    started = [e.body for e in events if e.kind is EventKind.MEMBERS_STARTED]
    assert started == [{"count": 5, "total": 12}]  # max_concurrency 5; one event in all
    assert sorted(CALLS["double"]) == items  # each element ran once
    empty = await kit.run("doubles", [])
    assert empty.state is RunState.SUCCEEDED and empty.result == {"wrapped": []}


async def test_a_failed_group_is_retried_with_new_members(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("again", [-5])
    assert (record.state, record.attempt) == (RunState.FAILED, 2)
    first = await kit.running.get(member_id(record.run_id, 0, 1, 0))
    second = await kit.running.get(member_id(record.run_id, 0, 2, 0))
    assert (first.state, second.state) == (RunState.FAILED, RunState.FAILED)
    assert CALLS["double"] == [-5, -5]  # once per attempt of the group


async def test_groups_nest(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("nested", [1, 2])
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.result == [
        {"twice": 2, "wrapped": {"wrapped": 1}},
        {"twice": 4, "wrapped": {"wrapped": 2}},
    ]
    inner = await kit.running.get(member_id(member_id(record.run_id, 0, 1, 1), 0, 1, 0))
    assert (inner.flow, inner.result) == ("nested~map~each~pair~twice", 4)


async def test_a_map_refuses_what_is_not_a_list(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("doubles", {"not": "a list"})
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.message == "a map step takes a list, not dict"


async def test_fail_fast_cancels_the_members_still_running(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("bookings", [13, -1])  # 13 never ends; -1 fails
    record = await kit.wait(run_id)
    assert record.state is RunState.FAILED and record.error is not None
    assert record.error.type == "GroupFailed"
    slow, failed = await _members(kit, run_id, 0, 2)
    assert failed.state is RunState.COMPENSATED  # its own booking undone by its failure
    assert slow.state is RunState.CANCELLED  # cancelled by the group, not left running


async def test_a_failed_group_compensates_members_that_succeeded(
    orch_serv_kit: KitFactory,
) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("bookings", [1, -1])
    record = await kit.wait(run_id)
    assert record.state is RunState.FAILED
    first, second = await _members(kit, run_id, 0, 2)
    await kit.wait(first.run_id)
    await kit.settle()
    first = await kit.running.get(first.run_id)
    assert first.state is RunState.COMPENSATED
    assert sorted(UNDONE, key=str) == [{"booked": -1}, {"booked": 1}]  # each undone once
    assert second.state is RunState.COMPENSATED


async def test_members_that_time_out_count_as_failed(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("doubles", [1, 13])
    await _at_group(kit, run_id, 0, 2)
    started = Phase.STARTED
    await kit.until(member_id(run_id, 0, 1, 1), lambda r: r.phase is started, skip_time=False)
    await kit.advance(31)  # the execution clock of the member on 13 runs out
    record = await kit.wait(run_id)
    assert record.state is RunState.FAILED and record.error is not None
    assert record.error.details == {"failed": {"1": "TIMED_OUT"}, "failed_count": 1}


async def test_members_retry_and_a_failure_after_retries_counts(
    orch_serv_kit: KitFactory,
) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("retried", [1, -1, 2])
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.result in ([2, None, 4], [2, None, None], [None, None, 4])
    assert CALLS["double"].count(-1) in (0, 1, 2, 3)


async def test_cancelling_the_run_cancels_its_members(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("doubles", [13, 13, 13])
    await _at_group(kit, run_id, 0, 3)
    await kit.running.cancel(run_id)
    for _ in range(5):  # the group's check is due at once; the timer loop polls each second
        await kit.advance(1)
        members = await _members(kit, run_id, 0, 3)
        if all(m.state is RunState.CANCELLED for m in members):
            break
    assert [m.state for m in members] == [RunState.CANCELLED] * 3
    store = kit.running.store
    assert isinstance(store, RedisRunStore)
    assert await store.redis.pttl(join_key(store.keys, run_id, 0, 1)) > 0  # it expires


async def test_a_group_step_that_times_out_cancels_its_members(
    orch_serv_kit: KitFactory,
) -> None:
    kit = await orch_serv_kit(app)
    run_id = await kit.start("bounded", [13, 13])
    await _at_group(kit, run_id, 0, 2)
    await kit.advance(6)  # the step's total clock runs out: the run ends TIMED_OUT
    record = await kit.running.get(run_id)
    assert record.state is RunState.TIMED_OUT
    for _ in range(15):  # the group's next check (its poll: 10 s) finds the run gone
        await kit.advance(1)
        members = await _members(kit, run_id, 0, 2)
        if all(m.state is RunState.CANCELLED for m in members):
            break
    assert [m.state for m in members] == [RunState.CANCELLED] * 2


async def test_a_duplicate_join_reply_is_ignored(orch_serv_kit: KitFactory) -> None:
    kit = await orch_serv_kit(app)
    record = await kit.run("formats", {"text": "dup"})
    spec = await kit.running.store.get_spec("flow", "formats", record.version)
    assert spec is not None
    again = wait_reply(record, spec.steps[1], {"other": 1}, kit.clock())
    again = again.model_copy(update={"attempt": 1})
    await kit.running.engine.groups.publish(again)
    await kit.settle()
    events = await kit.events(record.run_id)
    assert [e.step for e in events if e.kind is EventKind.STEP_COMPLETED] == [0, 1, 2]
    assert (await kit.running.get(record.run_id)).result == record.result
    # a member's last reply delivered again leaves the member and the join as they were
    member = await kit.running.get(member_id(record.run_id, 1, 1, 1))
    branch = await kit.running.store.get_spec("flow", member.flow, member.version)
    assert branch is not None
    await kit.running.engine.groups.publish(
        wait_reply(member, branch.steps[-1], {"late": True}, kit.clock())
    )
    await kit.settle()
    assert (await kit.running.get(member.run_id)).result == member.result
    member_events = await kit.events(member.run_id)
    assert [e.kind for e in member_events].count(EventKind.STEP_COMPLETED) == 2
    assert member_events[-1].kind in (EventKind.REPLY_IGNORED, EventKind.LATE_RESULT)
    store = kit.running.store
    assert isinstance(store, RedisRunStore)
    join = await cast(
        Awaitable[dict[str, str]], store.redis.hgetall(join_key(store.keys, record.run_id, 1, 1))
    )
    assert {k: v for k, v in join.items() if not k.startswith("#")} == {
        "0": "SUCCEEDED",
        "1": "SUCCEEDED",
    }


async def test_the_views_show_the_members(orch_serv_kit: KitFactory) -> None:
    from orch_serv import render
    from orch_serv.orchestrator.members import group_views

    kit = await orch_serv_kit(app)
    record = await kit.run("doubles", [1, 2, 3])
    events = await kit.events(record.run_id)
    store = kit.running.store
    assert await group_views(store, record) == []  # the run is past its group
    (view,) = await group_views(store, record, events)
    assert (view.kind, view.join, view.total, view.counts) == ("map", "all", 3, {"SUCCEEDED": 3})
    assert [m.run_id for m in view.members] == [member_id(record.run_id, 0, 1, m) for m in range(3)]
    document = render.run_json(record, None, [view])
    assert document["groups"][0]["members"][2] == {
        "index": 2,
        "label": "2",
        "run_id": member_id(record.run_id, 0, 1, 2),
        "state": "SUCCEEDED",
    }
    assert view.lines()[0] == (
        "group 'map' (step 1, attempt 1, map, join all): 3 member(s): 3 SUCCEEDED"
    )
