"""The store's transition script applies exactly the compare-and-set rule the decision core's
unit tests assume (``orch_serv.orchestrator.core.check``): the same table of stored positions
and expectations, on fakeredis and on the real Redis."""

from __future__ import annotations

import itertools

from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.orchestrator.core.check import Stored, check
from orch_serv.store.base import Event, NewRun, Position, Transition
from orch_serv.store.redis import RedisRunStore

SPEC = FlowSpec(
    name="f",
    steps=tuple(
        StepSpec(index=i, name=n, block=n, service="s", command=n) for i, n in enumerate("abc")
    ),
).with_version()

HOMES = [
    Position(RunState.PENDING, 0, 0, Phase.QUEUED),
    Position(RunState.RUNNING, 1, 1, Phase.DISPATCHED),
    Position(RunState.RUNNING, 1, 2, Phase.STARTED),
    Position(RunState.RUNNING, 1, 2, Phase.BACKOFF),
    Position(RunState.COMPENSATING, 0, 1, Phase.DISPATCHED),
    Position(RunState.FAILED, 1, 0),
    Position(RunState.SUCCEEDED, None, None),
]
EXPECTS = [
    (Position(RunState.PENDING, 0, 0, Phase.QUEUED), frozenset()),
    (Position(RunState.RUNNING, 1, 1, Phase.DISPATCHED), frozenset()),
    (Position(RunState.RUNNING, 1, 1), frozenset()),
    (Position(RunState.RUNNING, 1, 2, Phase.BACKOFF), frozenset()),
    (Position(RunState.RUNNING, 2, 1), frozenset()),
    (Position(RunState.RUNNING, 1, None), frozenset()),
    (Position(RunState.COMPENSATING, 0, 1), frozenset()),
    (
        Position(RunState.RUNNING, None, None),
        frozenset({RunState.PENDING, RunState.RUNNING, RunState.COMPENSATING}),
    ),
]


async def _at(store: RedisRunStore, run_id: str, home: Position) -> Stored:
    await store.create_run(NewRun(run_id=run_id, spec=SPEC, input={}, now=100.0))
    if home.state is not RunState.PENDING:
        await store.transition(
            Transition.any_active(run_id=run_id, new=home, cause="setup", now=101.0)
        )
    record = await store.get_run(run_id)
    assert record is not None
    terminal = record.state.terminal
    return Stored(
        record.state,
        record.step,
        record.attempt,
        None if terminal else record.phase,
        cause=None if terminal or home.state is RunState.PENDING else "setup",
    )


async def test_the_transition_script_applies_the_core_rule(store: RedisRunStore) -> None:
    cases = itertools.product(enumerate(HOMES), enumerate(EXPECTS), ("setup", "other"))
    for (h, home), (e, (expect, also)), cause in cases:
        run_id = f"c{h}{e}{cause[0]}"
        stored = await _at(store, run_id, home)
        change = Transition(
            run_id=run_id,
            expect=expect,
            also_states=also,
            new=Position(RunState.RUNNING, 2, 1, Phase.DISPATCHED),
            cause=cause,
            now=102.0,
            ignored=Event(kind=EventKind.REPLY_IGNORED, time=102.0),
        )
        result = await store.transition(change)
        assert (result.outcome, result.reason) == check(stored, change), (home, expect, cause)
