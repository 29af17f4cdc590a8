"""OpenTelemetry traces: one trace per run.

Off unless :func:`enable` is called (processes call :func:`enable_from_env` when
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set): while off,
opentelemetry is not even imported and no span object is made.

The trace of a run and its root span have ids derived from the run id (:func:`run_ids`), so
that every process that knows a run id can put a span under the run's root without the root
having to travel with every message (a timer knows nothing but the run id). The root span,
``run <flow>``, is made by the orchestrator that handles the run's START; the ``traceparent``
a client put on the START (its own span) becomes a *link* of the root. Under the root:

- ``dispatch <step>`` (producer): an orchestrator publishing a command (every attempt, the
  compensations too); the command's ``traceparent`` field carries this span's context;
- ``execute <service>.<command>`` (consumer), in the service process, under the dispatch
  span it names; it is the current span while the handler runs, so the handler's own spans
  (``opentelemetry.trace.get_tracer(...).start_as_current_span(...)``) nest under it;
- ``reply <step>`` (consumer), an orchestrator handling the reply, under the same dispatch
  span (the reply echoes the command's ``traceparent``);
- ``resume <flow>`` and ``timer <kind>``: a RESUME (retry) and a fired timer (timeouts,
  back-off ends, the deadline), under the root.

The per-message context travels in the envelope's ``traceparent`` field (W3C format), not in
an AMQP header: under load several envelopes share one AMQP message (a batch), whose headers
are the first envelope's.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, SpanContext, Tracer

#: Instrumentation scope of orch_serv's spans.
SCOPE = "orch_serv"

_LOCK = threading.Lock()
_TRACER: Tracer | None = None
_FORCED: Any = None  # contextvars.ContextVar[tuple[int, int] | None], made on enable
_SAMPLER: Any = None  # the provider's sampler


def run_ids(run_id: str) -> tuple[int, int]:
    """(trace id, root span id) of a run: the first 16 and the next 8 bytes of the SHA-256
    of its id (never zero)."""
    digest = hashlib.sha256(run_id.encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return trace_id, span_id


def trace_id_hex(run_id: str) -> str:
    """The trace id of a run as tracing back ends show it (32 hex digits)."""
    return f"{run_ids(run_id)[0]:032x}"


def format_traceparent(context: SpanContext) -> str:
    """A span context as a W3C ``traceparent`` value."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def parse_traceparent(value: str | None) -> SpanContext | None:
    """The remote span context a W3C ``traceparent`` names; None when absent or malformed."""
    if not value or len(value) != 55:
        return None
    parts = value.split("-")
    if len(parts) != 4 or parts[0] != "00":
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    from opentelemetry.trace import SpanContext, TraceFlags

    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags & 0xFF))


class _Root:
    """What every span of a run needs of its root: the context under it, the trace id, and
    whether the run is sampled."""

    __slots__ = ("context", "sampled", "trace_id")

    def __init__(self, run_id: str) -> None:
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            TraceFlags,
            set_span_in_context,
        )

        trace_id, span_id = run_ids(run_id)
        sampler = _SAMPLER
        # the sampler's verdict on the run's root: a ratio sampler keeps or drops whole runs
        # (the trace id, derived from the run id, decides), in every process alike
        self.sampled = bool(
            sampler is None or sampler.should_sample(None, trace_id, "run").decision.is_sampled()
        )
        self.trace_id = trace_id
        flags = TraceFlags(TraceFlags.SAMPLED if self.sampled else TraceFlags.DEFAULT)
        parent = SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
        self.context = set_span_in_context(NonRecordingSpan(parent))


_ROOTS: dict[str, _Root] = {}
#: Roots kept (runs in flight at once, roughly); the cache is emptied when full.
ROOT_CACHE_SIZE = 4096


def _root(run_id: str) -> _Root:
    root = _ROOTS.get(run_id)
    if root is None:
        if len(_ROOTS) >= ROOT_CACHE_SIZE:
            _ROOTS.clear()
        root = _ROOTS[run_id] = _Root(run_id)
    return root


def sampled(run_id: str) -> bool:
    """Whether the run's spans are recorded (the sampler's verdict on its root). The
    instrumentation makes no span at all for a run that is not."""
    return _root(run_id).sampled


def root_context(run_id: str) -> Context:
    """A context whose parent is the run's root span (cached: every step asks for it)."""
    return _root(run_id).context


def parent_context(run_id: str, traceparent: str | None) -> Context:
    """The context ``traceparent`` names when it belongs to the run's trace, else the root."""
    root = _root(run_id)
    parent = parse_traceparent(traceparent)
    if parent is not None and parent.trace_id == root.trace_id:
        from opentelemetry.trace import NonRecordingSpan, set_span_in_context

        return set_span_in_context(NonRecordingSpan(parent))
    return root.context


def start_root(name: str, run_id: str, link: str | None, attributes: dict[str, Any]) -> Span:
    """Start the run's root span (its ids derived from the run id); ``link``: the
    ``traceparent`` the run was started with, if any."""
    from opentelemetry.context import Context
    from opentelemetry.trace import Link

    tracer = _TRACER
    assert tracer is not None and _FORCED is not None
    linked = parse_traceparent(link)
    links = [Link(linked)] if linked is not None else None
    token = _FORCED.set(run_ids(run_id))
    try:
        return tracer.start_span(name, context=Context(), links=links, attributes=attributes)
    finally:
        _FORCED.reset(token)


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span, if tracing is on and a span is current (a
    client uses it to link the runs it starts to its own trace)."""
    if _TRACER is None:
        return None
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    return format_traceparent(context) if context.is_valid else None


def record_exception(exc: BaseException) -> None:
    """Record ``exc`` on the current span (a handler's failure), if tracing is on."""
    if _TRACER is None:
        return
    from opentelemetry.trace import Status, StatusCode, get_current_span

    span = get_current_span()
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:512]))


def _id_generator(inner: Any) -> Any:
    """An id generator that gives the ids in ``_FORCED`` to the span started while it is set
    (the run's root span), and ``inner``'s otherwise."""
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    forced = _FORCED

    class RunIds(IdGenerator):
        def generate_trace_id(self) -> int:
            ids = forced.get()
            return int(ids[0]) if ids is not None else int(inner.generate_trace_id())

        def generate_span_id(self) -> int:
            ids = forced.get()
            return int(ids[1]) if ids is not None else int(inner.generate_span_id())

        def is_trace_id_random(self) -> bool:
            return False

    return RunIds()


def enable(provider: TracerProvider) -> Tracer:
    """Trace with ``provider`` (an SDK ``TracerProvider``; its id generator is wrapped so that
    root spans get the run's ids). Engines and workers created afterwards are traced."""
    import contextvars

    global _TRACER, _FORCED, _SAMPLER
    with _LOCK:
        _SAMPLER = getattr(provider, "sampler", None)
        _ROOTS.clear()
        if _FORCED is None:
            _FORCED = contextvars.ContextVar("orch_serv_forced_ids", default=None)
        if not getattr(provider.id_generator, "_orch_serv", False):
            wrapped = _id_generator(provider.id_generator)
            wrapped._orch_serv = True
            provider.id_generator = wrapped
        from orch_serv import __version__

        _TRACER = provider.get_tracer(SCOPE, __version__)
        return _TRACER


def disable() -> None:
    """Stop tracing in engines and workers created from now on (tests)."""
    global _TRACER
    with _LOCK:
        _TRACER = None
        _ROOTS.clear()


def active() -> Tracer | None:
    """The tracer if tracing is on, else None."""
    return _TRACER


def endpoint_configured(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment asks for OTLP export (and does not disable the SDK)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def enable_from_env(service_name: str) -> bool:
    """Export spans over OTLP/HTTP when the environment names an endpoint (idempotent);
    returns whether tracing is on. The provider becomes OpenTelemetry's global one, so that
    handlers' spans are exported too. ``OTEL_SERVICE_NAME`` wins over ``service_name``; the
    exporter and the batch processor read their other ``OTEL_*`` variables themselves.
    Raises :class:`~orch_serv.exceptions.ConfigurationError` when the SDK is missing."""
    if _TRACER is not None:
        return True
    if not endpoint_configured():
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        from orch_serv.exceptions import ConfigurationError

        raise ConfigurationError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed: "
            "pip install 'orch_serv[otel]'"
        ) from exc
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    enable(provider)
    from opentelemetry import trace

    trace.set_tracer_provider(provider)  # the handlers' own tracers: spans under the step's
    return True


__all__ = [
    "SCOPE",
    "active",
    "current_traceparent",
    "disable",
    "enable",
    "enable_from_env",
    "endpoint_configured",
    "format_traceparent",
    "parent_context",
    "parse_traceparent",
    "record_exception",
    "root_context",
    "run_ids",
    "start_root",
    "trace_id_hex",
]
