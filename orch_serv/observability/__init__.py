"""Prometheus metrics and OpenTelemetry traces of orch_serv processes (docs/observability.md).

Both are off by default and then cost nothing: prometheus-client and opentelemetry are not
imported, and engines and workers are not instrumented. :func:`setup` turns them on for a
process from its settings and environment (``metrics_port``; ``OTEL_EXPORTER_OTLP_ENDPOINT``);
the engine and the service worker call it, then :func:`instrument_engine` /
:func:`instrument_worker`, when they are created.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from orch_serv.logs import get_logger

if TYPE_CHECKING:
    from orch_serv.orchestrator.engine import Engine
    from orch_serv.service.worker import ServiceWorker
    from orch_serv.settings import Settings

log = get_logger("observability")

_LOCK = threading.Lock()
_DONE: set[str] = set()


def setup(settings: Settings, role: str) -> None:
    """Turn on what ``settings`` and the environment ask for, once per process: metrics
    served at ``http://{metrics_host}:{metrics_port}/metrics`` when ``metrics_port`` is
    set, spans exported over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is. ``role``
    (``orchestrator``, ``service``) names the process (``orch-serv-{role}``) in traces."""
    port = getattr(settings, "metrics_port", None)
    if port is not None:
        address = (getattr(settings, "metrics_host", "127.0.0.1"), int(port))
        key = f"metrics:{address[0]}:{address[1]}"
        with _LOCK:
            fresh = key not in _DONE
            _DONE.add(key)
        if fresh:
            from orch_serv.observability import metrics

            metrics.enable()
            bound = metrics.serve(*address)
            log.info("metrics_serving", url=f"http://{address[0]}:{bound}/metrics")
    from orch_serv.observability import tracing

    if tracing.active() is None and tracing.endpoint_configured():
        with _LOCK:
            if tracing.enable_from_env(f"orch-serv-{role}"):
                log.info("tracing_enabled", role=role)


def instrument_engine(engine: Engine) -> None:
    """Instrument an orchestrator engine for what is on (nothing to do when all is off)."""
    from orch_serv.observability import metrics, tracing

    if metrics.active() is None and tracing.active() is None:
        return
    from orch_serv.observability.engine_hooks import instrument_engine as attach

    attach(engine)


def instrument_worker(worker: ServiceWorker) -> None:
    """Instrument a service worker for what is on (nothing to do when all is off)."""
    from orch_serv.observability import metrics, tracing

    if metrics.active() is None and tracing.active() is None:
        return
    from orch_serv.observability.worker_hooks import instrument_worker as attach

    attach(worker)


__all__ = ["instrument_engine", "instrument_worker", "setup"]
