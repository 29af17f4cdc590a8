"""The Prometheus metrics of orch_serv processes (prometheus-client).

Off until :func:`enable` is called: the orchestrator and service processes call it when
``metrics_port`` is set (:func:`orch_serv.observability.setup`), the API when its
``/metrics`` route is mounted. While off, nothing is imported and the engine and the
workers carry no instrumentation at all.

Labels stay bounded: flow and step *names* (never run ids), run states, timer clocks,
error *types* (class names or the codes handlers raise), component names. Which process
exports what:

- orchestrator: runs started/finished, runs in flight, step attempts, retries, timeouts
  by clock, late results, compensations, dead letters, timer lag;
- service: step duration and queue wait (from the command's creation to the handler's
  start), handler errors by type, handlers in progress, dead letters.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Step durations and queue waits, in seconds: 1 ms to 5 min.
STEP_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
#: Timer lag, in seconds: 0.5 ms to 10 s.
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Every metric orch_serv exports (one set per registry)."""

    registry: CollectorRegistry
    runs_started: Counter
    runs_finished: Counter
    runs_in_flight: Gauge
    step_attempts: Counter
    step_retries: Counter
    step_timeouts: Counter
    late_results: Counter
    compensations: Counter
    dead_letters: Counter
    timer_lag: Histogram
    step_duration: Histogram
    step_queue_wait: Histogram
    handler_errors: Counter
    handlers_in_progress: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Register the metrics in ``registry``."""
        from prometheus_client import Counter, Gauge, Histogram

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(f"orch_serv_{name}", doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: Any, *labels: str) -> Histogram:
            return Histogram(f"orch_serv_{name}", doc, labels, registry=registry, buckets=buckets)

        return cls(
            registry=registry,
            runs_started=counter("runs_started", "Runs started (START applied).", "flow"),
            runs_finished=counter(
                "runs_finished", "Runs that reached a terminal state.", "flow", "state"
            ),
            runs_in_flight=Gauge(
                "orch_serv_runs_in_flight",
                "Runs started minus runs finished, as seen by this process (sum over "
                "the processes that advance runs).",
                ["flow"],
                registry=registry,
            ),
            step_attempts=counter(
                "step_attempts", "Commands dispatched (every attempt).", "flow", "step"
            ),
            step_retries=counter(
                "step_retries", "Commands dispatched for a second or later attempt.", "flow", "step"
            ),
            step_timeouts=counter(
                "step_timeouts", "Step clocks that ran out.", "flow", "step", "clock"
            ),
            late_results=counter(
                "late_results", "Replies that arrived after their attempt was over.", "flow"
            ),
            compensations=counter(
                "compensations", "Compensation commands dispatched.", "flow", "step"
            ),
            dead_letters=counter(
                "dead_letters", "Messages sent to the dead-letter queue.", "component"
            ),
            timer_lag=histogram(
                "timer_lag_seconds",
                "How late the earliest due timer was claimed.",
                LAG_BUCKETS,
            ),
            step_duration=histogram(
                "step_duration_seconds",
                "Handler execution time.",
                STEP_BUCKETS,
                "flow",
                "step",
            ),
            step_queue_wait=histogram(
                "step_queue_wait_seconds",
                "From the command's dispatch to its handler's start.",
                STEP_BUCKETS,
                "flow",
                "step",
            ),
            handler_errors=counter(
                "handler_errors", "Failed handler executions by error type.", "flow", "step", "type"
            ),
            handlers_in_progress=Gauge(
                "orch_serv_handlers_in_progress",
                "Handlers executing now.",
                ["service"],
                registry=registry,
            ),
        )


_LOCK = threading.Lock()
_METRICS: Metrics | None = None
_SERVED: set[tuple[str, int]] = set()


def enable(registry: CollectorRegistry | None = None) -> Metrics:
    """Turn metrics on for this process (idempotent): the metrics in ``registry``
    (prometheus-client's default registry when None). Engines and workers created afterwards
    are instrumented. Calling it again with another registry switches to that one (tests)."""
    global _METRICS
    with _LOCK:
        if _METRICS is not None and (registry is None or _METRICS.registry is registry):
            return _METRICS
        if registry is None:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        _METRICS = Metrics.create(registry)
        return _METRICS


def disable() -> None:
    """Turn metrics off for engines and workers created from now on (tests)."""
    global _METRICS
    with _LOCK:
        _METRICS = None


def active() -> Metrics | None:
    """The metrics if they are on, else None."""
    return _METRICS


def serve(host: str, port: int, registry: CollectorRegistry | None = None) -> int:
    """Expose ``registry`` (default: prometheus-client's default one) at
    ``http://host:port/metrics`` from a daemon thread (once per address); returns the port
    (the one picked when ``port`` is 0). Raises
    :class:`~orch_serv.exceptions.ConfigurationError` when the address cannot be bound."""
    from prometheus_client import REGISTRY, start_http_server

    with _LOCK:
        if port and (host, port) in _SERVED:
            return port
        try:
            server, _thread = start_http_server(port, addr=host, registry=registry or REGISTRY)
        except OSError as exc:
            from orch_serv.exceptions import ConfigurationError

            raise ConfigurationError(
                f"cannot serve metrics on {host}:{port} (metrics_host, metrics_port): {exc}"
            ) from exc
        bound = int(server.server_address[1])
        _SERVED.add((host, bound))
        return bound


def exposition(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The text exposition of ``registry`` (default: the active metrics' registry, else
    prometheus-client's default one) and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

    if registry is None:
        registry = _METRICS.registry if _METRICS is not None else REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = ["Metrics", "active", "disable", "enable", "exposition", "serve"]
