"""A client that dies between creating a run and sending its START (or between a retry's
transition and its RESUME) strands nothing: the orchestrators' housekeeping sends it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.store.base import NewRun, Position, Transition
from orch_serv.store.redis import RedisRunStore
from tests.apps.pipeline import orchestrator

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(
    any_backends: tuple[Any, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    transport, store = any_backends
    quick = settings.model_copy(
        update={"housekeeping_interval_seconds": 0.1, "stranded_after_seconds": 0.0}
    )
    async with orchestrator.attach(transport, store, quick, with_services=True) as running:
        yield running


async def test_a_run_whose_start_was_never_sent_still_runs(running: Running) -> None:
    spec = await running.resolve("pipeline")
    await running.store.create_run(  # what Client.start does, minus the START it died before
        NewRun(run_id="stranded1", spec=spec, input={"n": 5}, now=time.time())
    )
    record = await running.wait("stranded1", timeout=30)
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"n": 5, "trail": ["one", "two", "three"]}


async def test_a_retry_whose_resume_was_never_sent_still_runs(running: Running) -> None:
    run_id = await running.start("pipeline", {"n": "not a number"})
    failed = await running.wait(run_id, timeout=30)
    assert failed.state is RunState.FAILED
    # what Client.retry does, minus the RESUME it died before; with a body fixed by hand
    await running.store.transition(
        Transition(
            run_id=run_id,
            expect=Position(RunState.FAILED, failed.step, failed.attempt),
            new=Position(RunState.RUNNING, failed.step, failed.attempt + 1, Phase.QUEUED),
            cause=f"{run_id}:retry",
            now=time.time(),
            fields={"error": None, "step_input": {"n": 6}},
        )
    )
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    events = await running.events(run_id)
    completed = [(e.step, e.attempt) for e in events if e.kind is EventKind.STEP_COMPLETED]
    assert completed == [(0, 2), (1, 1), (2, 1)]


async def test_a_stranded_run_of_an_unknown_flow_version_fails_clearly(running: Running) -> None:
    spec = (await running.resolve("pipeline")).model_copy(update={"version": "gone"})
    await running.store.create_run(
        NewRun(run_id="stranded2", spec=spec, input={"n": 1}, now=time.time())
    )
    record = await running.wait("stranded2", timeout=30)
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "FlowNotFound"
    assert "version 'gone'" in record.error.message
