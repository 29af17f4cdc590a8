"""Metrics and spans of an orchestrator engine, attached from outside its hot path.

:func:`instrument_engine` replaces a few of the engine's collaborators and bound methods with
instrumented wrappers, and only for what is on: with metrics and tracing off the engine runs
exactly as if this module did not exist.

Metrics are read off what the engine commits: the store's methods are wrapped
(:func:`meter_store`) and each applied transition is classified by its events and new
state, labelled with the flow (and step) of the definition the engine looked up for the
message or timer at hand (kept in a context variable, one per delivery task).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Collection
from typing import TYPE_CHECKING, Any

from orch_serv.constants import EventKind, MessageKind, TimerKind
from orch_serv.observability import tracing
from orch_serv.observability.metrics import Metrics
from orch_serv.store.base import Outcome, Transition, TransitionResult

if TYPE_CHECKING:
    from orch_serv.flow.spec import FlowSpec
    from orch_serv.messages.envelope import Envelope
    from orch_serv.orchestrator.engine import Engine
    from orch_serv.store.base import RunRecord, RunStore
    from orch_serv.store.timers import TimerId

#: (flow name, its spec when known) of the message or timer being handled.
_FLOW: contextvars.ContextVar[tuple[str, FlowSpec | None]] = contextvars.ContextVar(
    "orch_serv_metrics_flow", default=("unknown", None)
)

#: The error type of a step timeout -> the clock that ran out.
_CLOCK_OF_ERROR = {
    "DispatchTimeout": TimerKind.DISPATCH.value,
    "HeartbeatTimeout": TimerKind.HEARTBEAT.value,
    "ExecutionTimeout": TimerKind.EXECUTION.value,
    "StepTotalTimeout": TimerKind.TOTAL.value,
    "RunDeadlineExceeded": TimerKind.DEADLINE.value,
}


def note_spec(spec: FlowSpec) -> None:
    """Label what is committed next in this task with ``spec``'s flow."""
    _FLOW.set((spec.name, spec))


def _step_name(spec: FlowSpec | None, index: int | None) -> str:
    if index is None:
        return ""
    step = spec.step(index) if spec is not None else None
    return step.name if step is not None else str(index)


def observe_transition(metrics: Metrics, change: Transition, result: TransitionResult) -> None:
    """Count what an applied transition did (a late reply when it did not apply)."""
    flow, spec = _FLOW.get()
    if result.outcome is not Outcome.APPLIED:
        if result.outcome is Outcome.STALE and change.ignored is not None:
            metrics.late_results.labels(flow).inc()
        return
    for event in change.events:
        kind = event.kind
        if kind is EventKind.STEP_DISPATCHED:
            step = _step_name(spec, event.step)
            metrics.step_attempts.labels(flow, step).inc()
            if (event.attempt or 1) > 1:
                metrics.step_retries.labels(flow, step).inc()
        elif kind is EventKind.COMPENSATION_DISPATCHED:
            metrics.compensations.labels(flow, _step_name(spec, event.step)).inc()
        elif kind is EventKind.STEP_TIMED_OUT:
            error = event.error.type if event.error is not None else ""
            clock = _CLOCK_OF_ERROR.get(error, "other")
            metrics.step_timeouts.labels(flow, _step_name(spec, event.step), clock).inc()
        elif kind is EventKind.RUN_STARTED:
            metrics.runs_started.labels(flow).inc()
            metrics.runs_in_flight.labels(flow).inc()
        elif kind is EventKind.RUN_RESUMED:
            metrics.runs_in_flight.labels(flow).inc()
    state = change.new.state
    if state.terminal:
        metrics.runs_finished.labels(flow, state.value).inc()
        metrics.runs_in_flight.labels(flow).dec()


def meter_store(store: RunStore, metrics: Metrics) -> None:
    """Count the transitions applied through ``store`` (and measure the timer lag), by
    wrapping four of the store *object's* methods: the store stays the same object (code that
    checks its class, or shares it with a client, keeps working), and a client sharing it
    counts what it applies too (a cancellation). Idempotent per ``metrics``."""
    if getattr(store, "_orch_serv_metered", None) is metrics:
        return
    transition = store.transition
    get_run = store.get_run
    next_timer_due = store.next_timer_due
    claim_timers = store.claim_timers
    last_due: list[float | None] = [None]

    async def metered_transition(change: Transition) -> TransitionResult:
        result = await transition(change)
        observe_transition(metrics, change, result)
        return result

    async def noting_get_run(run_id: str) -> RunRecord | None:
        # the run's flow labels what this task commits next (a timer knows only the run)
        record = await get_run(run_id)
        if record is not None and _FLOW.get()[0] != record.flow:
            _FLOW.set((record.flow, None))
        return record

    async def remembered_due(shards: Collection[int] | None = None) -> float | None:
        last_due[0] = due = await next_timer_due(shards)
        return due

    async def lagged_claim(
        now: float, lease: float, limit: int, shards: Collection[int] | None = None
    ) -> list[tuple[str, int]]:
        claimed = await claim_timers(now, lease, limit, shards)
        due = last_due[0]
        if claimed and due is not None and due <= now:  # the timer the loop slept for
            metrics.timer_lag.observe(now - due)
            last_due[0] = None
        return claimed

    setattr(store, "transition", metered_transition)  # noqa: B010
    setattr(store, "get_run", noting_get_run)  # noqa: B010
    setattr(store, "next_timer_due", remembered_due)  # noqa: B010
    setattr(store, "claim_timers", lagged_claim)  # noqa: B010
    setattr(store, "_orch_serv_metered", metrics)  # noqa: B010


class _NotingDefinitions:
    """The engine's definitions, noting the flow of each one looked up."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, kind: str, name: str | None, version: str | None) -> Any:
        definition = await self._inner.get(kind, name, version)
        note_spec(definition.spec)
        return definition

    async def of(self, message: Envelope[Any]) -> Any:
        definition = await self._inner.of(message)
        note_spec(definition.spec)
        return definition


Route = Callable[["Envelope[Any]", bool], Awaitable[str | None]]
Publish = Callable[["Envelope[Any]"], Awaitable[None]]
OnTimer = Callable[["TimerId"], Awaitable[None]]


def _attach_metrics(engine: Engine, metrics: Metrics) -> None:
    meter_store(engine.store, metrics)
    engine.definitions = _NotingDefinitions(engine.definitions)  # type: ignore[assignment]
    dead_letter = engine._dead_letter
    counter = metrics.dead_letters.labels("orchestrator")

    async def counted_dead_letter(delivery: Any, reason: str) -> None:
        counter.inc()
        await dead_letter(delivery, reason)

    engine._dead_letter = counted_dead_letter  # type: ignore[method-assign]


def _route_span(message: Envelope[Any]) -> Any:
    """The span of handling ``message`` in an orchestrator (None: heartbeats, statuses, and
    every message of a run the sampler left out)."""
    kind = message.kind
    if kind is MessageKind.HEARTBEAT or kind is MessageKind.STATUS:
        return None
    if not tracing.sampled(message.run_id):
        return None
    name = message.flow or message.target or ""
    attributes = {"orch_serv.run_id": message.run_id, "orch_serv.flow": name}
    if kind is MessageKind.START:
        attributes["orch_serv.flow_version"] = message.flow_version or ""
        return tracing.start_root(f"run {name}", message.run_id, message.traceparent, attributes)
    tracer = tracing.active()
    assert tracer is not None
    from opentelemetry.trace import SpanKind

    if kind is MessageKind.REPLY:
        attributes = _step_attributes(message)
        if message.error is not None:
            attributes["orch_serv.error_type"] = message.error.type
        context = tracing.parent_context(message.run_id, message.traceparent)
        step = message.step_name or str(message.step)
        return tracer.start_span(
            f"reply {step}", context=context, kind=SpanKind.CONSUMER, attributes=attributes
        )
    if kind is MessageKind.RESUME:
        context = tracing.root_context(message.run_id)
        return tracer.start_span(f"resume {name}", context=context, attributes=attributes)
    return None


def _step_attributes(message: Envelope[Any]) -> dict[str, Any]:
    """The attributes of a step's span (few: each costs the SDK; the step's name, service
    and command are in the span's name)."""
    return {
        "orch_serv.run_id": message.run_id,
        "orch_serv.step": message.step,
        "orch_serv.attempt": message.attempt,
        "orch_serv.lane": message.lane.value,
    }


def _attach_tracing(engine: Engine) -> None:
    from opentelemetry.trace import SpanKind, Status, StatusCode, use_span

    tracer = tracing.active()
    assert tracer is not None
    route: Route = engine._route
    publish: Publish = engine._publish
    on_timer: OnTimer = engine.timers.handler

    async def traced_route(message: Envelope[Any], redelivered: bool) -> str | None:
        span = _route_span(message)
        if span is None:
            return await route(message, redelivered)
        with use_span(span, end_on_exit=True):
            verdict = await route(message, redelivered)
            if verdict is not None:
                span.set_status(Status(StatusCode.ERROR, verdict[:512]))
            return verdict

    async def traced_publish(message: Envelope[Any]) -> None:
        if message.kind is not MessageKind.COMMAND or not tracing.sampled(message.run_id):
            await publish(message)
            return
        step = message.step_name or str(message.step)
        span = tracer.start_span(
            f"dispatch {step}",
            context=tracing.root_context(message.run_id),
            kind=SpanKind.PRODUCER,
            attributes=_step_attributes(message),
        )
        try:  # not made current: nothing is traced inside a publish
            message.traceparent = tracing.format_traceparent(span.get_span_context())
            await publish(message)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:512]))
            raise
        finally:
            span.end()

    async def traced_timer(timer: TimerId) -> None:
        if not tracing.sampled(timer.run_id):
            await on_timer(timer)
            return
        context = tracing.root_context(timer.run_id)
        attributes = {"orch_serv.run_id": timer.run_id, "orch_serv.timer": timer.kind.value}
        with tracer.start_as_current_span(
            f"timer {timer.kind.value}", context=context, attributes=attributes
        ):
            await on_timer(timer)

    engine._route = traced_route  # type: ignore[method-assign]
    engine._publish = traced_publish  # type: ignore[method-assign]
    engine.timers.handler = traced_timer


def instrument_engine(engine: Engine) -> None:
    """Attach metrics and spans to ``engine``, for whichever of them is on."""
    from orch_serv.observability import metrics

    active = metrics.active()
    if active is not None:
        _attach_metrics(engine, active)
    if tracing.active() is not None:
        _attach_tracing(engine)


__all__ = ["instrument_engine", "meter_store", "note_spec", "observe_transition"]
