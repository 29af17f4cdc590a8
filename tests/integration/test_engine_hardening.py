"""Operator defects on the engine side (issue #8): two applications in one namespace, a start
that can never be delivered, run outcomes in the log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from orch_serv.constants import RunState
from orch_serv.exceptions import NamespaceConflict
from orch_serv.orchestrator.presence import app_names, conflicts
from orch_serv.settings import Settings
from orch_serv.store.base import NewRun
from orch_serv.store.redis import RedisRunStore
from tests.apps.failing import orchestrator as failing_app
from tests.apps.pipeline import orchestrator as pipeline_app
from tests.conftest import AMQP_URL, REDIS_URL, eventually

pytestmark = pytest.mark.integration
ORCH_SERV = Path(sys.executable).parent / "orch-serv"


def test_apps_conflict_only_when_neither_serves_all_the_other_does() -> None:
    pipeline = app_names(["pipeline"], ["two"])
    assert not conflicts(pipeline, pipeline)  # replicas of one app
    assert not conflicts(pipeline, pipeline | {"flow:new"})  # a rolling upgrade adds a flow
    assert conflicts(pipeline, app_names(["sometimes"], []))  # another app


async def test_a_second_application_in_a_namespace_refuses_to_start(
    backends: tuple[Any, RedisRunStore], settings: Settings
) -> None:
    transport, store = backends
    async with pipeline_app.attach(transport, store, settings, with_services=True) as running:
        with pytest.raises(NamespaceConflict) as caught:
            async with failing_app.attach(transport, store, settings):
                pytest.fail("the second application started")
        message = caught.value.message
        assert repr(settings.namespace) in message and "flow:pipeline" in message
        assert "--namespace" in message
        # the first application is untouched and a replica of it may still join
        async with pipeline_app.attach(transport, store, settings):
            run_id = await running.start("pipeline", {"n": 1})
            assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED
    # once every replica of the first has stopped, the namespace is free again
    async with failing_app.attach(transport, store, settings):
        pass


async def test_the_cli_refuses_a_second_application_with_one_clear_line(
    backends: tuple[Any, RedisRunStore], settings: Settings
) -> None:
    transport, store = backends
    env = {
        **os.environ,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_NAMESPACE": settings.namespace,
        "ORCH_SERV_KEY_PREFIX": settings.key_prefix,
    }
    async with pipeline_app.attach(transport, store, settings):
        done = await asyncio.to_thread(
            subprocess.run,
            [str(ORCH_SERV), "orchestrator", "tests.apps.failing:orchestrator"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert "is served by another application" in done.stderr


async def test_a_start_that_is_never_taken_ends_the_run_failed(
    backends: tuple[Any, RedisRunStore], settings: Settings
) -> None:
    transport, store = backends
    strict = settings.model_copy(
        update={"max_message_bytes": 1024, "stranded_after_seconds": 0.0, "max_start_attempts": 2}
    )
    async with pipeline_app.attach(transport, store, strict) as running:
        spec = await running.resolve("pipeline")
        # a body over the orchestrator's limit: every START is dead-lettered (what a client
        # that does not check the limit, or a limit lowered later, leaves behind)
        await store.create_run(
            NewRun(
                run_id="toolarge1", spec=spec, input={"n": 1, "pad": "x" * 4096}, now=time.time()
            )
        )
        engine = running.engine
        for _ in range(strict.max_start_attempts):
            await engine.recover_stranded()
            assert (await running.get("toolarge1")).state is RunState.PENDING
        await engine.recover_stranded()
        record = await running.get("toolarge1")
        assert record.state is RunState.FAILED
        assert record.error is not None and record.error.type == "StartUndeliverable"
        assert "sent 2 times" in record.error.message
        letters = await eventually(
            lambda: _letters(transport, strict.max_start_attempts), timeout=30
        )
        assert all("bytes" in (d.reason or "") for d in letters), letters


async def _letters(transport: Any, at_least: int) -> Any:
    letters = await transport.dead_letters()
    return letters if len(letters) >= at_least else None


async def test_run_outcomes_are_logged_at_info(
    backends: tuple[Any, RedisRunStore], settings: Settings
) -> None:
    transport, store = backends
    with structlog.testing.capture_logs() as logs:
        async with pipeline_app.attach(transport, store, settings, with_services=True) as running:
            ok = await running.start("pipeline", {"n": 2})
            bad = await running.start("pipeline", {"n": "not a number"})
            await running.wait(ok, timeout=30)
            await running.wait(bad, timeout=30)
    finished = {e["run_id"]: e for e in logs if e.get("event") == "run_finished"}
    assert finished[ok]["state"] == "SUCCEEDED" and finished[ok]["log_level"] == "info"
    assert finished[bad]["state"] == "FAILED" and finished[bad]["error"] == "ValidationError"
