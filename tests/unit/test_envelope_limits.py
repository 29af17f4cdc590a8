"""The numeric limits of the envelope (issue #8), the pieces of the service runtime that
depend on them (replies, errors, stale commands, back-off), and reading old stored data."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from pydantic import ValidationError

from orch_serv.constants import EventKind, Lane, MessageKind, Phase, RunState
from orch_serv.exceptions import ConfigurationError, DecodeError, RetryAfter
from orch_serv.logs import get_logger
from orch_serv.messages.codec import decode, encode
from orch_serv.messages.envelope import Envelope, ErrorInfo, StatusInfo
from orch_serv.messages.limits import (
    MAX_DURATION_MS,
    MAX_INDEX,
    MAX_JSON_INT,
    MAX_RETRY_AFTER,
    MAX_TIMESTAMP,
    MIN_JSON_INT,
    check_json_numbers,
    valid_timestamp,
)
from orch_serv.service.backoff import Backoff, pause
from orch_serv.service.context import HandlerContext
from orch_serv.service.currency import stale_reason
from orch_serv.service.replies import build_reply, error_info
from orch_serv.store.base import Event, Position

BASE = '"kind":"reply","message_id":"m","run_id":"r"'


def _decode(extra: str) -> Envelope[Any]:
    return decode(f"{{{BASE},{extra}}}".encode())


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('"attempt":18446744073709551616', "attempt"),
        (f'"attempt":{MAX_INDEX + 1}', "attempt"),
        ('"attempt":0', "attempt"),
        (f'"step":{MAX_INDEX + 1}', "step"),
        ('"step":-1', "step"),
        ('"created_at":NaN', "created_at"),
        ('"created_at":Infinity', "created_at"),
        ('"created_at":1e999', "created_at"),
        ('"created_at":-1e308', "created_at"),
        (f'"created_at":{MAX_TIMESTAMP + 1}', "created_at"),
        ('"deadline":-Infinity', "deadline"),
        ('"deadline":1e300', "deadline"),
        ('"duration_ms":-0.5', "duration_ms"),
        ('"duration_ms":NaN', "duration_ms"),
        (f'"duration_ms":{MAX_DURATION_MS * 2}', "duration_ms"),
        ('"body":{"a":[1,{"b":18446744073709551616}]}', "body"),
        ('"body":-9223372036854775809', "body"),
        ('"body":{"x":NaN}', "body"),
        ('"progress":[Infinity]', "progress"),
        ('"status":{"name":"s","lineage":{"n":-Infinity}}', "status.lineage"),
        ('"error":{"type":"t","message":"m","details":{"n":NaN}}', "error.details"),
        ('"error":{"type":"t","message":"m","details":{"retry_after":-1}}', "error.details"),
        ('"error":{"type":"t","message":"m","details":{"retry_after":1e300}}', "error.details"),
        ('"error":{"type":"t","message":"m","details":{"retry_after":"soon"}}', "error.details"),
    ],
)
def test_out_of_range_numbers_are_decode_errors_naming_the_field(extra: str, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        _decode(extra)
    assert caught.value.message.startswith(f"invalid envelope: {field}: "), caught.value.message


def test_numbers_at_the_limits_are_accepted() -> None:
    message = _decode(
        f'"step":{MAX_INDEX},"attempt":{MAX_INDEX},"created_at":{MAX_TIMESTAMP},'
        f'"deadline":0,"duration_ms":{MAX_DURATION_MS},'
        f'"body":{{"big":{MAX_JSON_INT},"small":{MIN_JSON_INT},"f":1.5e300,"ok":true}},'
        f'"error":{{"type":"t","message":"m","details":{{"retry_after":{MAX_RETRY_AFTER}}}}}'
    )
    assert (message.step, message.attempt) == (MAX_INDEX, MAX_INDEX)
    assert message.body["big"] == MAX_JSON_INT and message.body["small"] == MIN_JSON_INT
    assert decode(encode(message)).body == message.body  # what is accepted round-trips


def test_models_built_in_code_are_checked_too() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Envelope[Any](kind=MessageKind.REPLY, message_id="m", run_id="r", body=[math.nan])
    with pytest.raises(ValidationError, match="retry_after"):
        ErrorInfo(type="t", message="m", details={"retry_after": math.inf})
    with pytest.raises(ValidationError, match="64-bit"):
        StatusInfo(name="s", lineage={"n": 2**64})


def test_check_json_numbers_names_the_path() -> None:
    assert check_json_numbers({"a": [True, 1, 2.5, None, "x"]}) == {"a": [True, 1, 2.5, None, "x"]}
    with pytest.raises(ValueError, match=r"a\[2\]\.b"):
        check_json_numbers({"a": [0, 1, {"b": 2**63}]})


def test_valid_timestamp() -> None:
    assert valid_timestamp(1.5) == 1.5
    assert valid_timestamp(10) == 10.0
    for bad in (None, "1", True, -1.0, math.nan, math.inf, -1e308, MAX_TIMESTAMP * 2):
        assert valid_timestamp(bad) is None


# -- old stored data --------------------------------------------------------------------------
@pytest.mark.parametrize("stored", [None, -1e308, "soon", math.nan])
def test_event_with_an_unusable_stored_time_reads_as_no_time(stored: Any) -> None:
    event = Event.from_storage(3, {"k": "su", "t": stored, "nm": "legacy"})
    assert (event.kind, event.seq, event.time, event.name) == (EventKind.STATUS, 3, 0.0, "legacy")
    assert Event.from_storage(1, {"k": "su"}).time == 0.0


def test_stored_error_outside_the_new_limits_still_reads() -> None:
    data = {"type": "Slow", "message": "m", "details": {"retry_after": 1e300}}
    error = ErrorInfo.from_stored(data)
    assert (error.type, error.details) == ("Slow", {"retry_after": 1e300})
    event = Event.from_storage(1, {"k": "sf", "t": 5.0, "e": data})
    assert event.error is not None and event.error.type == "Slow"


# -- replies and errors -----------------------------------------------------------------------
COMMAND = Envelope[Any](
    kind=MessageKind.COMMAND, message_id="r:0:1", run_id="r", step=0, attempt=1, command="c"
)


@pytest.mark.parametrize("result", [{"x": math.nan}, [2**70], {"x": object()}])
def test_a_result_json_cannot_carry_becomes_an_error_reply(result: Any) -> None:
    reply, payload = build_reply(
        COMMAND, service="s", result=result, error=None, duration_ms=1.0, max_bytes=1 << 20
    )
    assert reply.body is None
    assert reply.error is not None and reply.error.type == "ResultNotSerializable"
    assert decode(payload).error == reply.error


def test_reply_duration_is_kept_in_range() -> None:
    for raw, kept in ((-3.0, 0.0), (math.nan, 0.0), (1.23456, 1.235)):
        reply, _ = build_reply(
            COMMAND, service="s", result=None, error=None, duration_ms=raw, max_bytes=1 << 20
        )
        assert reply.duration_ms == kept


def test_retry_after_out_of_range_is_a_non_retryable_error() -> None:
    assert error_info(RetryAfter(5)).details == {"retry_after": 5}
    for delay in (math.inf, -1.0, MAX_RETRY_AFTER * 2):
        error = error_info(RetryAfter(delay))
        assert (error.type, error.retryable) == ("InvalidRetryAfter", False)


# -- stale commands ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("position", "lane", "why"),
    [
        (Position(RunState.RUNNING, 0, 1, Phase.DISPATCHED), Lane.RUN, None),
        (Position(RunState.RUNNING, 0, 1, Phase.STARTED), Lane.RUN, None),
        (Position(RunState.COMPENSATING, 0, 1, Phase.DISPATCHED), Lane.COMPENSATE, None),
        (Position(RunState.CANCELLED, 0, 1, Phase.DONE), Lane.RUN, "CANCELLED"),
        (Position(RunState.SUCCEEDED, 0, 1, Phase.DONE), Lane.RUN, "SUCCEEDED"),
        (Position(RunState.COMPENSATING, 0, 1, Phase.DISPATCHED), Lane.RUN, "needs RUNNING"),
        (Position(RunState.PENDING, 0, 0, Phase.QUEUED), Lane.RUN, "PENDING"),
        (Position(RunState.RUNNING, 1, 1, Phase.DISPATCHED), Lane.RUN, "at step 1"),
        (Position(RunState.RUNNING, 0, 2, Phase.BACKOFF), Lane.RUN, "at attempt 2"),
    ],
)
def test_stale_reason(position: Position, lane: Lane, why: str | None) -> None:
    command = COMMAND.model_copy(update={"lane": lane})
    reason = stale_reason(position, command)
    assert reason is None if why is None else why in (reason or "")


# -- back-off and ctx.once without a store -----------------------------------------------------
def test_backoff_doubles_up_to_its_maximum_and_resets() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1
    with pytest.raises(ValueError):
        Backoff(1.0, 0.5)


async def test_pause_returns_early_when_stopped() -> None:
    stop = asyncio.Event()
    assert await pause(0.001, stop) is False
    stop.set()
    assert await pause(3600, stop) is True


async def test_once_without_a_store_is_a_clear_error() -> None:
    async def publish(_: Envelope[Any]) -> None:
        return None

    ctx = HandlerContext(
        COMMAND,
        service="s",
        publish=publish,
        loop=asyncio.get_running_loop(),
        logger=get_logger("test"),
    )
    assert ctx.idempotency_key == "r:0:1"
    with pytest.raises(ConfigurationError, match="needs a run store"):
        await ctx.once("charge")


def test_only_a_command_that_may_have_waited_is_checked() -> None:
    from orch_serv.service.currency import CancelledRuns, needs_check

    now = 1_000.0
    young = Envelope[Any](kind=MessageKind.COMMAND, message_id="r:0:1", run_id="r", created_at=now)
    old = young.model_copy(update={"created_at": now - 5})
    listening = now - 60

    def check(command: Envelope[Any], **kw: Any) -> bool:
        args: dict[str, Any] = {"redelivered": False, "after": 1.0, "now": now}
        return needs_check(command, **(args | {"listening_since": listening} | kw))

    assert not check(young)
    assert check(old)  # queued while the service was down or busy
    assert check(young, redelivered=True)
    assert check(young, listening_since=now)  # created before this worker heard notices
    assert check(young, after=0.0)  # 0: every command
    assert check(young.model_copy(update={"created_at": now + 5}))  # clocks apart
    cancelled = CancelledRuns(keep_seconds=10, most=2)
    cancelled.add("a", now=0.0)
    assert cancelled.seen("a", now=5.0) and not cancelled.seen("a", now=11.0)
    cancelled.add("b")
    cancelled.add("c")
    assert "a" not in cancelled and "c" in cancelled  # bounded: the oldest is forgotten
