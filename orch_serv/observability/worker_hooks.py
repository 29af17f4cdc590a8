"""Metrics and spans of a service worker, attached from outside its hot path.

:func:`instrument_worker` wraps three bound methods of a :class:`ServiceWorker`, and only
for what is on:

- ``_execute`` (a command taken from the queue): the ``execute`` span, current while the
  handler runs (under the dispatch span the command's ``traceparent`` names), and the
  handlers-in-progress gauge;
- ``_reply`` (the handler's outcome): step duration, queue wait (from the command's creation
  to the handler's start: ``reply time - duration - created_at``, across hosts as good as
  their clocks) and handler errors by type;
- ``_dead_letter``: the dead-letter counter.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from orch_serv.observability import tracing
from orch_serv.observability.metrics import Metrics

if TYPE_CHECKING:
    from orch_serv.messages.envelope import Envelope, ErrorInfo
    from orch_serv.service.worker import ServiceWorker


def _labels(command: Envelope[Any]) -> tuple[str, str]:
    return command.flow or command.target or "", command.step_name or str(command.step)


def _attach_metrics(worker: ServiceWorker, metrics: Metrics) -> None:
    reply = worker._reply
    execute = worker._execute
    dead_letter = worker._dead_letter
    in_progress = metrics.handlers_in_progress.labels(worker.service.name)
    dead = metrics.dead_letters.labels("service")

    async def metered_reply(
        command: Envelope[Any], result: Any, error: ErrorInfo | None, duration_ms: float
    ) -> None:
        now = time.time()
        flow, step = _labels(command)
        seconds = max(duration_ms, 0.0) / 1000
        metrics.step_duration.labels(flow, step).observe(seconds)
        metrics.step_queue_wait.labels(flow, step).observe(
            max(now - seconds - command.created_at, 0.0)
        )
        if error is not None:
            metrics.handler_errors.labels(flow, step, error.type).inc()
        await reply(command, result, error, duration_ms)

    async def metered_execute(command: Envelope[Any], delivery: Any, ctx: Any) -> None:
        in_progress.inc()
        try:
            await execute(command, delivery, ctx)
        finally:
            in_progress.dec()

    async def counted_dead_letter(delivery: Any, reason: str) -> None:
        dead.inc()
        await dead_letter(delivery, reason)

    worker._reply = metered_reply  # type: ignore[method-assign]
    worker._execute = metered_execute  # type: ignore[method-assign]
    worker._dead_letter = counted_dead_letter  # type: ignore[method-assign]


def _attach_tracing(worker: ServiceWorker) -> None:
    from opentelemetry.trace import SpanKind, Status, StatusCode, get_current_span

    tracer = tracing.active()
    assert tracer is not None
    execute = worker._execute
    reply = worker._reply
    service = worker.service.name

    async def traced_execute(command: Envelope[Any], delivery: Any, ctx: Any) -> None:
        if not tracing.sampled(command.run_id):
            await execute(command, delivery, ctx)
            return
        context = tracing.parent_context(command.run_id, command.traceparent)
        attributes: dict[str, Any] = {  # few: each costs the SDK
            "orch_serv.run_id": command.run_id,
            "orch_serv.step": command.step,
            "orch_serv.attempt": command.attempt,
            "orch_serv.lane": command.lane.value,
        }
        with tracer.start_as_current_span(
            f"execute {service}.{command.command}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=True,
        ):
            await execute(command, delivery, ctx)

    async def traced_reply(
        command: Envelope[Any], result: Any, error: ErrorInfo | None, duration_ms: float
    ) -> None:
        if error is not None:
            span = get_current_span()
            span.set_attribute("orch_serv.error_type", error.type)
            span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"[:512]))
        await reply(command, result, error, duration_ms)

    worker._execute = traced_execute  # type: ignore[method-assign]
    worker._reply = traced_reply  # type: ignore[method-assign]


def instrument_worker(worker: ServiceWorker) -> None:
    """Attach metrics and spans to ``worker``, for whichever of them is on."""
    from orch_serv.observability import metrics

    active = metrics.active()
    if active is not None:
        _attach_metrics(worker, active)
    if tracing.active() is not None:
        _attach_tracing(worker)


__all__ = ["instrument_worker"]
