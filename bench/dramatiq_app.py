"""The Dramatiq broker and actors of the Dramatiq benchmark (``bench.dramatiq_pipeline``).

The worker process runs ``dramatiq bench.dramatiq_app`` with ``BENCH_NS`` set: importing
this module then builds the broker for that namespace and makes it the global broker. The
driver calls :func:`make` itself (one broker per measured run).

Durability, as close to the other systems as Dramatiq allows:

* ``RabbitmqBroker(confirm_delivery=True)``: every enqueue waits for RabbitMQ's publisher
  confirm (off by default in Dramatiq). Messages are always persistent (``delivery_mode=2``)
  and every queue Dramatiq declares is a durable *classic* queue (``<ns>``, its delay queue
  ``<ns>.DQ`` and dead-letter queue ``<ns>.XQ``); Dramatiq cannot declare quorum queues.
* Messages are acked after the actor ran and its after-process middleware (the next
  pipeline step's enqueue, the result write) finished.
* ``Results(store_results=True)`` with the Redis backend: every step's result (its state) is
  written to Redis, as the other systems write every step.

Three trivial actors ``<ns>_step1`` .. ``<ns>_step3`` each add 1, carrying the wall-clock end
time of each step (see ``bench.celery_app.StepValue``). So that the single-threaded driver
can wait for many pipelines without a thread or a blocking read per pipeline, the last step
publishes ``{"id", "ends", "ok"}`` on the Redis channel ``<ns>.done`` once its result is
stored (:class:`NotifyDone`): one PUBLISH per flow, the counterpart of Celery's result
pub/sub and orch_serv's "finished" channel.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Middleware
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from bench.common import AMQP_URL, REDIS_URL, STEPS_PER_FLOW

#: Seconds a stored result lives (the driver deletes its keys anyway).
RESULT_TTL_MS = 300_000


def queue_name(namespace: str) -> str:
    """The durable queue of every step (Dramatiq adds ``.DQ`` and ``.XQ`` next to it)."""
    return namespace


def queues(namespace: str) -> list[str]:
    """Every queue Dramatiq declares for this namespace, for clean-up."""
    name = queue_name(namespace)
    return [name, f"{name}.DQ", f"{name}.XQ"]


def results_namespace(namespace: str) -> str:
    """Prefix of the result keys in Redis (``<this>:<queue>:<actor>:<message id>``)."""
    return f"{namespace}-results"


def done_channel(namespace: str) -> str:
    """The Redis channel the last step announces each finished pipeline on."""
    return f"{namespace}.done"


def actor_name(namespace: str, step: int) -> str:
    """The name of step ``step`` (1-based)."""
    return f"{namespace}_step{step}"


class NotifyDone(Middleware):
    """After the last step's result is stored, publish its id and step end times."""

    def __init__(self, namespace: str) -> None:
        self.channel = done_channel(namespace)
        self.last_actor = actor_name(namespace, STEPS_PER_FLOW)
        self.client = redis.Redis.from_url(REDIS_URL)

    def after_process_message(
        self,
        broker: Any,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Announce the finished pipeline (the result is already in Redis)."""
        if message.actor_name != self.last_actor:
            return
        ends = result["ends"] if exception is None else []
        payload = {"id": message.message_id, "ends": ends, "ok": exception is None}
        self.client.publish(self.channel, json.dumps(payload))


@dataclass
class App:
    """One namespace's broker and its three actors."""

    broker: RabbitmqBroker
    steps: list[Any]


def _step1(value: int) -> dict[str, Any]:
    return {"value": value + 1, "ends": [time.time()]}


def _advance(previous: dict[str, Any]) -> dict[str, Any]:
    return {"value": previous["value"] + 1, "ends": [*previous["ends"], time.time()]}


def make(namespace: str) -> App:
    """Build the broker of ``namespace`` (confirms on), make it Dramatiq's global broker and
    declare the three actors on it."""
    broker = RabbitmqBroker(url=AMQP_URL, confirm_delivery=True)
    backend = RedisBackend(
        client=redis.Redis.from_url(REDIS_URL),
        namespace=results_namespace(namespace),
        use_namespace_prefix_keys=True,
    )
    results = Results(  # type: ignore[no-untyped-call]
        backend=backend, store_results=True, result_ttl=RESULT_TTL_MS
    )
    broker.add_middleware(results)
    # after_* hooks run in reverse order: placed before Results, NotifyDone runs after it
    broker.add_middleware(NotifyDone(namespace), before=Results)
    dramatiq.set_broker(broker)
    queue = queue_name(namespace)
    functions: list[Callable[..., dict[str, Any]]] = [_step1, _advance, _advance]
    steps = [
        dramatiq.actor(
            actor_name=actor_name(namespace, i),
            queue_name=queue,
            broker=broker,
            store_results=True,
            max_retries=0,
        )(fn)
        for i, fn in enumerate(functions, start=1)
    ]
    return App(broker, steps)


if "BENCH_NS" in os.environ:  # the worker process: ``dramatiq bench.dramatiq_app``
    APP: App = make(os.environ["BENCH_NS"])
    broker: RabbitmqBroker = APP.broker
