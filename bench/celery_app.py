"""The Celery application of the Celery benchmark (``bench.celery_chain``).

Configured from environment variables so that the worker process, started as
``celery -A bench.celery_app worker ...``, and the driver agree:

``BENCH_NS``
    namespace of the task names, the task queue/exchange and the control/event exchanges,
    so that concurrent runs don't mix (default ``bench_celery``);
``BENCH_BROKER_URL``
    broker (default ``amqp://guest:guest@127.0.0.1:5672//``);
``BENCH_RESULT_BACKEND``
    result backend (default ``redis://127.0.0.1:6379/0``);
``BENCH_PREFETCH_MULTIPLIER``
    ``worker_prefetch_multiplier`` (default 4, Celery's own default);
``BENCH_RESULT_EXPIRES``
    ``result_expires`` in seconds (default 300; the driver deletes its keys anyway).

Durability matches the other systems: persistent messages (Celery's default delivery mode,
set explicitly), publisher confirms (``confirm_publish``), late acks, and every task's
result (state) written to Redis.

Three trivial tasks ``<ns>.step1`` .. ``<ns>.step3`` each return their input + 1. So that
the driver can measure per-step latency, the value travels in a small dict that also carries
the wall-clock time (``time.time()``) at which each step's body finished; see
``bench.celery_chain``.
"""

from __future__ import annotations

import os
import time
from typing import TypedDict

from celery import Celery
from kombu import Exchange, Queue

DEFAULT_NAMESPACE = "bench_celery"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_RESULT_BACKEND = "redis://127.0.0.1:6379/0"


class StepValue(TypedDict):
    """What a step returns: the running value and the end time of each step so far."""

    value: int
    #: ``time.time()`` when each step's body finished, in step order.
    ends: list[float]


def task_name(namespace: str, step: int) -> str:
    """The registered name of step ``step`` (1-based)."""
    return f"{namespace}.step{step}"


def queue_name(namespace: str) -> str:
    """The (durable) task queue; its direct exchange has the same name."""
    return f"{namespace}.tasks"


def control_exchange(namespace: str) -> str:
    """Base of the control (pidbox) exchanges: ``<this>.pidbox``, ``reply.<this>.pidbox``."""
    return f"{namespace}.celery"


def event_exchange(namespace: str) -> str:
    """The events exchange (events are off, but keep even its name namespaced)."""
    return f"{namespace}.celeryev"


def exchanges(namespace: str) -> list[str]:
    """Every exchange this app may declare, for clean-up."""
    control = control_exchange(namespace)
    return [
        queue_name(namespace),
        f"{control}.pidbox",
        f"reply.{control}.pidbox",
        event_exchange(namespace),
    ]


def _advance(previous: StepValue) -> StepValue:
    return {"value": previous["value"] + 1, "ends": [*previous["ends"], time.time()]}


def make_app(namespace: str) -> Celery:
    """A Celery app whose tasks, queue and exchanges are all named after ``namespace``."""
    queue = queue_name(namespace)
    app = Celery(namespace)
    app.conf.update(
        broker_url=os.environ.get("BENCH_BROKER_URL", DEFAULT_BROKER_URL),
        result_backend=os.environ.get("BENCH_RESULT_BACKEND", DEFAULT_RESULT_BACKEND),
        broker_connection_retry_on_startup=True,
        broker_transport_options={"confirm_publish": True},
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_default_delivery_mode="persistent",
        task_default_queue=queue,
        task_default_exchange=queue,
        task_default_exchange_type="direct",
        task_default_routing_key=queue,
        task_queues=[Queue(queue, Exchange(queue, type="direct", durable=True), routing_key=queue)],
        task_create_missing_queues=False,
        result_expires=int(os.environ.get("BENCH_RESULT_EXPIRES", "300")),
        worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH_MULTIPLIER", "4")),
        worker_send_task_events=False,
        task_send_sent_event=False,
        control_exchange=control_exchange(namespace),
        event_exchange=event_exchange(namespace),
    )

    @app.task(name=task_name(namespace, 1))
    def step1(value: int) -> StepValue:
        """First step: starts the chain's value."""
        return {"value": value + 1, "ends": [time.time()]}

    @app.task(name=task_name(namespace, 2))
    def step2(previous: StepValue) -> StepValue:
        """Second step."""
        return _advance(previous)

    @app.task(name=task_name(namespace, 3))
    def step3(previous: StepValue) -> StepValue:
        """Third step."""
        return _advance(previous)

    return app


NAMESPACE: str = os.environ.get("BENCH_NS", DEFAULT_NAMESPACE)
#: The app the worker runs (``celery -A bench.celery_app``), named after ``BENCH_NS``.
app: Celery = make_app(NAMESPACE)
