"""What a service sends back: the structured error of a failed handler, and the reply
envelope of a command, made safe to encode (a result that JSON cannot carry, or that is too
large, becomes an error reply instead of a crash or a silently altered body)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from orch_serv.constants import MessageKind
from orch_serv.exceptions import HandlerError, RetryAfter
from orch_serv.messages import ids
from orch_serv.messages.codec import encode
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.messages.limits import MAX_DURATION_MS, MAX_RETRY_AFTER


def error_info(exc: BaseException, *, body: bool = True) -> ErrorInfo:
    """The structured error a reply carries for an exception raised by a handler (``body``:
    a ValidationError came from validating the step's body, not from the handler's code)."""
    if isinstance(exc, RetryAfter):
        delay = exc.delay
        if not (isinstance(delay, int | float) and 0 <= delay <= MAX_RETRY_AFTER):
            return ErrorInfo(
                type="InvalidRetryAfter",
                message=f"RetryAfter delay must be between 0 and {MAX_RETRY_AFTER:.0f} "
                f"seconds, got {delay!r} ({exc.message})",
                retryable=False,
            )
        return ErrorInfo(
            type=exc.type,
            message=exc.message,
            retryable=True,
            details={"retry_after": delay},
        )
    if isinstance(exc, HandlerError):
        return ErrorInfo(type=exc.type, message=exc.message, retryable=exc.retryable)
    if isinstance(exc, ValidationError):
        details = exc.errors(include_url=False, include_input=False, include_context=False)
        what = "body failed validation" if body else f"{exc.title} failed validation"
        message = f"{what}: {exc.error_count()} error(s)"
        try:
            return ErrorInfo(
                type="ValidationError",
                message=message,
                retryable=False,
                details={"errors": details},
            )
        except ValidationError:  # details that JSON cannot carry: keep the message
            return ErrorInfo(type="ValidationError", message=message, retryable=False)
    return ErrorInfo(type=type(exc).__name__, message=str(exc) or repr(exc), retryable=True)


def _duration(duration_ms: float) -> float:
    if not math.isfinite(duration_ms):
        return 0.0
    return round(min(max(duration_ms, 0.0), MAX_DURATION_MS), 3)


def build_reply(
    command: Envelope[Any],
    *,
    service: str,
    result: Any,
    error: ErrorInfo | None,
    duration_ms: float,
    max_bytes: int,
) -> tuple[Envelope[Any], bytes]:
    """The reply to ``command`` and its encoded bytes. A result that cannot be encoded as
    JSON (or holds numbers JSON cannot carry) becomes a ``ResultNotSerializable`` error, a
    reply over ``max_bytes`` a ``ResultTooLarge`` one; both are non-retryable."""

    def answer(body: Any, failure: ErrorInfo | None) -> Envelope[Any]:
        return command.answer(
            MessageKind.REPLY,
            ids.reply_id(command.message_id),
            service=service,
            source=command.step_name,
            body=body,
            error=failure,
            duration_ms=_duration(duration_ms),
        )

    try:
        reply = answer(result, error)
        payload = encode(reply)
    except (ValidationError, PydanticSerializationError, TypeError, ValueError) as exc:
        reply = answer(
            None,
            ErrorInfo(
                type="ResultNotSerializable",
                message=f"handler result is not JSON-serialisable: {exc}",
                retryable=False,
            ),
        )
        payload = encode(reply)
    if len(payload) > max_bytes:
        reply = answer(
            None,
            ErrorInfo(
                type="ResultTooLarge",
                message=f"the reply of {len(payload)} bytes exceeds the limit of {max_bytes}",
                retryable=False,
            ),
        )
        payload = encode(reply)
    return reply, payload


__all__ = ["build_reply", "error_info"]
