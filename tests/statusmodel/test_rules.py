"""The ready-to-set and finish rules (seed-behaviours 2.4), in their order, and the Lua script
that applies them atomically held to the same answers (on the embedded Redis)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import cast

import pytest

from orch_serv.statusmodel import (
    Code,
    FinishReason,
    Status,
    StatusModel,
    StatusRule,
    StatusType,
    finish_reason,
    ready,
)
from orch_serv.statusmodel.rules import timed_out
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.statuses import StatusStore

#: Every kind of edge: A -> B(optional) -> D, A -> C(stop), B|E(optional) -> F (no mandatory
#: predecessor), A,B -> D (mandatory and optional predecessors).
MODEL = StatusModel(
    "RULES",
    statuses=[
        Status("A"),
        Status("B", StatusType.OPTIONAL, after=["A"]),
        Status("C", StatusType.STOP, after=["A"]),
        Status("D", after=["A", "B"]),
        Status("E", StatusType.OPTIONAL),
        Status("F", StatusType.OPTIONAL, after=["B", "E"]),
    ],
)


def _ready(name: str, reached: set[str], finished: str | None = None) -> Code:
    return ready(StatusRule.of(MODEL, name), reached, finished)


def test_a_finished_instance_refuses_first() -> None:
    assert _ready("WRONG", set(), "TIMEOUT") is Code.INSTANCE_IS_FINISHED


def test_an_unknown_status() -> None:
    assert _ready("WRONG", set()) is Code.STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT
    assert ready(StatusRule.of(None, "A"), set()) is Code.STATUS_NAME_IS_NOT_FOUND_FOR_OBJECT


def test_mandatory_predecessors_must_all_be_set() -> None:
    assert _ready("D", set()) is Code.NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET
    assert _ready("D", {"B"}) is Code.NOT_ALL_PREVIOS_MANDATORY_STATUSES_ARE_SET
    assert _ready("D", {"A"}) is Code.SUCCESS  # the optional predecessor may be skipped


def test_without_mandatory_predecessors_one_other_must_be_set() -> None:
    assert _ready("F", set()) is Code.NO_ONE_PREVIOS_OPTIONAL_STATUSES_ARE_SET
    assert _ready("F", {"E"}) is Code.SUCCESS


def test_an_optional_status_cannot_follow_its_successor() -> None:
    assert _ready("B", {"A", "D"}) is Code.AT_LEAST_ONE_NEXT_STATUS_IS_SET
    assert _ready("B", {"A"}) is Code.SUCCESS


def test_a_status_is_set_once() -> None:
    assert _ready("A", {"A"}) is Code.STATUS_IS_ALREADY_SET
    assert _ready("E", {"E"}) is Code.STATUS_IS_ALREADY_SET


def test_the_rules_apply_in_order() -> None:
    # already set AND its successor set: the successor rule (6) answers before rule 7
    assert _ready("B", {"A", "B", "D"}) is Code.AT_LEAST_ONE_NEXT_STATUS_IS_SET


def test_finish_rules() -> None:
    rule = StatusRule.of(MODEL, "C")
    assert finish_reason(rule, {"A", "C"}) is FinishReason.STOP_STATUS_IS_SET
    assert finish_reason(rule, {"A", "C", "D"}) is FinishReason.ALL_MANDATORY_STATUSES_ARE_SET
    assert finish_reason(StatusRule.of(MODEL, "D"), {"A", "D"}) is (
        FinishReason.ALL_MANDATORY_STATUSES_ARE_SET
    )
    assert finish_reason(StatusRule.of(MODEL, "A"), {"A"}) is None


def test_a_model_without_mandatory_statuses_finishes_on_the_first_set() -> None:
    loose = StatusModel("LOOSE", statuses=[Status("X", "OPTIONAL"), Status("Y", "OPTIONAL")])
    assert finish_reason(StatusRule.of(loose, "X"), {"X"}) is (
        FinishReason.ALL_MANDATORY_STATUSES_ARE_SET
    )


def test_the_timeout_counts_from_creation_inclusive() -> None:
    assert timed_out(100.0, 10, 110.0) and not timed_out(100.0, 10, 109.999)
    assert timed_out(100.0, 0, 100.0)
    assert not timed_out(100.0, None, 1e12)


# -- the script gives the same answers --------------------------------------------------------
@pytest.fixture
async def statuses() -> AsyncIterator[StatusStore]:
    store = await RedisRunStore.connect(f"memory://rules-{uuid.uuid4().hex}", prefix="rules")
    try:
        yield StatusStore(store)
    finally:
        await store.close()


NAMES = ["A", "B", "C", "D", "E", "F", "WRONG"]
#: Every set of reached statuses the model allows (built by setting them in order).
STATES = [
    set(combo)
    for size in range(4)
    for combo in itertools.combinations(["A", "B", "D", "E", "F"], size)
]


async def test_the_script_checks_as_the_rules_say(statuses: StatusStore) -> None:
    for reached in STATES:
        token = await statuses.create(MODEL, None)
        if reached:
            added = statuses.store.redis.sadd(statuses.keys.statuses(token), *reached)
            await cast(Awaitable[int], added)
        for name in NAMES:
            expected = _ready(name, reached)
            outcome = await statuses.check(token, name)
            assert outcome.code is expected, (reached, name)


async def test_the_script_finishes_as_the_rules_say(statuses: StatusStore) -> None:
    for path in (["A", "C"], ["A", "D"], ["A", "B", "D"], ["E", "F"]):
        token = await statuses.create(MODEL, None)
        reached: set[str] = set()
        for name in path:
            outcome = await statuses.set_status(token, name)
            assert outcome.code is Code.SUCCESS
            reached.add(name)
            reason = finish_reason(StatusRule.of(MODEL, name), reached)
            assert outcome.finished == (reason.value if reason else "")
        assert outcome.state == ("SUCCEEDED" if outcome.finished else "RUNNING")
