"""Running one handler (and its post-processor) for a command: async handlers on the event
loop, plain ones in the worker's thread pool (with the delivery's logging context), the
cancellation rules, and how failures are logged and turned into structured errors."""

from __future__ import annotations

import asyncio
import contextvars
import traceback
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from pydantic import BaseModel, ValidationError

from orch_serv.exceptions import HandlerError, RetryAfter
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.observability import tracing
from orch_serv.service.context import HandlerContext
from orch_serv.service.handler import HandlerSpec
from orch_serv.service.replies import error_info


async def in_pool(pool: ThreadPoolExecutor, fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)`` in ``pool`` with a copy of the caller's context variables (so the
    run id, step and attempt bound for logging show on the log lines of a sync handler)."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool, partial(context.run, fn, *args))


def log_failure(ctx: HandlerContext, spec: HandlerSpec, exc: Exception) -> None:
    """Log a handler's exception with its traceback: ``RetryAfter`` (a request, not a fault)
    at info, a ``HandlerError`` (raised on purpose) at warning, anything else at error."""
    if isinstance(exc, RetryAfter):
        ctx.log.info("handler_retry_requested", command=spec.command, delay=exc.delay)
    elif isinstance(exc, HandlerError):
        ctx.log.warning("handler_failed", command=spec.command, error=repr(exc), exc_info=exc)
    else:
        ctx.log.error("handler_failed", command=spec.command, error=repr(exc), exc_info=exc)


#: The longest traceback kept with a failure (its end: the innermost frames and the error).
MAX_TRACEBACK_CHARS = 8000


def with_traceback(error: ErrorInfo, exc: BaseException) -> ErrorInfo:
    """``error`` with the handler's traceback in ``details["traceback"]`` (so the step's
    failure event stores it); a ``RetryAfter`` (a request, not a fault) is left as it is."""
    if isinstance(exc, RetryAfter):
        return error
    text = "".join(traceback.format_exception(exc))
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    return error.model_copy(update={"details": {**(error.details or {}), "traceback": text}})


async def invoke(
    spec: HandlerSpec, command: Envelope[Any], ctx: HandlerContext, pool: ThreadPoolExecutor
) -> tuple[Any, Any, ErrorInfo | None]:
    """Validate the body and run the handler: (result, extra for the post-processor, error).

    A cancel notice ends the work with a ``Cancelled`` error; a cancellation of the worker
    itself (shutdown) propagates, so the command goes back to the queue.
    """
    try:
        body = spec.parse(command.body)
    except ValidationError as exc:
        ctx.log.warning("handler_body_invalid", command=spec.command, errors=exc.error_count())
        return None, None, error_info(exc)
    try:
        args = (body, ctx) if spec.takes_context else (body,)
        if spec.is_async:
            work = asyncio.ensure_future(spec.fn(*args))
            ctx.attach(work)
            output = await work
        else:
            output = await in_pool(pool, spec.fn, *args)
        if ctx.cancelled:
            raise asyncio.CancelledError
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not ctx.cancelled or (current is not None and current.cancelling()):
            raise  # the worker itself is stopping: the command goes back to the queue
        ctx.log.info("handler_cancelled", command=spec.command)
        error = ErrorInfo(type="Cancelled", message="the run was cancelled", retryable=False)
        return None, None, error
    except Exception as exc:
        log_failure(ctx, spec, exc)
        tracing.record_exception(exc)
        return None, None, with_traceback(error_info(exc, body=False), exc)
    extra = None
    if type(output) is tuple and len(output) == 2:
        output, extra = output
    if output is None:
        output = command.body
    elif isinstance(output, BaseModel):
        output = output.model_dump(mode="json")
    return output, extra, None


async def post_process(
    spec: HandlerSpec, result: Any, extra: Any, ctx: HandlerContext, pool: ThreadPoolExecutor
) -> None:
    """Run the handler's post-processor after the command was acked; failures are logged
    (with the traceback) and change nothing."""
    assert spec.post is not None
    args = (result, extra, ctx) if spec.post_takes_context else (result, extra)
    try:
        if spec.post_is_async:
            await spec.post(*args)
        else:
            await in_pool(pool, spec.post, *args)
    except Exception:
        ctx.log.warning("post_process_failed", command=spec.command, exc_info=True)


__all__ = ["in_pool", "invoke", "log_failure", "post_process", "with_traceback"]
