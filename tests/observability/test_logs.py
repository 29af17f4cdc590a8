"""Logs that answer "why": a handler's exception is logged at error level with its traceback,
bound to the run, step and attempt, and stored with the step's failure event; the
orchestrator logs each run's outcome at info."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from orch_serv.constants import EventKind
from orch_serv.exceptions import HandlerError, RetryAfter
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.orchestrator.app import Running
from orch_serv.service.invoke import MAX_TRACEBACK_CHARS, with_traceback
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests.conftest import eventually
from tests.observability.app import orchestrator

pytestmark = pytest.mark.integration


@pytest.fixture
async def running(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    transport, store = backends
    async with orchestrator.attach(transport, store, settings, with_services=True) as running:
        yield running


async def test_a_handler_exception_is_logged_and_stored_with_its_traceback(
    running: Running,
) -> None:
    with capture_logs() as logs:
        run_id = await running.start("obs_boom", {})
        record = await running.wait(run_id, timeout=30)

        async def logged() -> bool:  # the engine logs the outcome after the store has it
            return any(e["event"] == "run_finished" and e.get("run_id") == run_id for e in logs)

        await eventually(logged)
    failed = [e for e in logs if e["event"] == "handler_failed"]
    assert len(failed) == 1
    entry = failed[0]
    assert entry["log_level"] == "error"
    assert (entry["run_id"], entry["step"], entry["attempt"]) == (run_id, 1, 1)
    exc = entry["exc_info"]
    assert isinstance(exc, ValueError) and str(exc) == "boom 42"

    events = await running.events(run_id)
    (failure,) = [e for e in events if e.kind is EventKind.STEP_FAILED]
    assert failure.error is not None and failure.error.type == "ValueError"
    stored = (failure.error.details or {})["traceback"]
    assert "in explode" in stored and stored.rstrip().endswith("ValueError: boom 42")
    assert record.error is not None and record.error.type == "ValueError"

    # the outcome at info: why the undoing started, then how the run ended
    mine = [e for e in logs if e.get("run_id") == run_id and e["log_level"] == "info"]
    (compensating,) = [e for e in mine if e["event"] == "run_compensating"]
    assert (compensating["error"], compensating["reason"]) == ("ValueError", "boom 42")
    (finished,) = [e for e in mine if e["event"] == "run_finished"]
    assert finished["state"] == record.state.value


def test_the_traceback_kept_is_the_end_of_a_long_one() -> None:
    try:
        raise LookupError("x" * (2 * MAX_TRACEBACK_CHARS) + " the end")
    except LookupError as exc:
        error = with_traceback(ErrorInfo(type="LookupError", message="x", details={"k": 1}), exc)
    assert error.details is not None and error.details["k"] == 1
    text = error.details["traceback"]
    assert text.startswith("...\n") and len(text) == MAX_TRACEBACK_CHARS + 4
    assert text.rstrip().endswith("xx the end")


def test_a_retry_request_carries_no_traceback() -> None:
    error = ErrorInfo(type="RetryAfter", message="later", details={"retry_after": 1})
    assert with_traceback(error, RetryAfter(1)) is error
    assert "traceback" in (with_traceback(error, HandlerError("on purpose")).details or {})
