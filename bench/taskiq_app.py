"""The taskiq broker and tasks of the taskiq benchmark (``bench.taskiq_pipeline``).

The worker processes run ``taskiq worker bench.taskiq_app:broker`` with ``BENCH_NS`` set;
the driver calls :func:`make` itself (one broker per measured run).

Durability, as close to the other systems as taskiq allows:

* ``taskiq-aio-pika``'s ``AioPikaBroker`` publishes every message persistent
  (``DeliveryMode.PERSISTENT``) on a channel with publisher confirms (aio-pika's default),
  awaiting each confirm; its exchange and queues are durable. Its default queue type is
  *quorum*; here the task queue and the dead-letter queue are declared *classic*, like
  orch_serv's, the raw baseline's, Celery's and Dramatiq's queues.
* The worker acks a message once its result is saved (taskiq's default ``--ack-type
  when_saved``), after ``taskiq-pipelines`` has kicked (published, confirmed) the next step.
* ``taskiq-redis``'s ``RedisAsyncResultBackend`` writes every step's result to Redis.

Three trivial tasks ``<ns>.step1`` .. ``<ns>.step3`` each add 1, carrying the wall-clock end
time of each step (see ``bench.celery_app.StepValue``). So that the driver does not poll
the result backend, the last step publishes ``{"id", "ends", "ok"}`` on the Redis channel
``<ns>.done`` after its result is saved (:class:`NotifyDone`): one PUBLISH per flow, the
counterpart of Celery's result pub/sub and orch_serv's "finished" channel.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from aio_pika import ExchangeType
from redis.asyncio import Redis
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue, QueueType
from taskiq_pipelines import PipelineMiddleware
from taskiq_pipelines.constants import CURRENT_STEP
from taskiq_redis import RedisAsyncResultBackend

from bench.common import AMQP_URL, REDIS_URL, STEPS_PER_FLOW

#: Seconds a stored result lives (the driver deletes its keys anyway).
RESULT_TTL_S = 300


def exchange_name(namespace: str) -> str:
    """The durable direct exchange tasks are published to."""
    return f"{namespace}.exchange"


def queue_name(namespace: str) -> str:
    """The durable classic task queue."""
    return f"{namespace}.tasks"


def dead_letter_queue(namespace: str) -> str:
    """The durable classic dead-letter queue taskiq-aio-pika declares."""
    return f"{namespace}.dead_letter"


def results_prefix(namespace: str) -> str:
    """Prefix of the result keys in Redis (``<this>:<task id>``)."""
    return f"{namespace}-results"


def done_channel(namespace: str) -> str:
    """The Redis channel the last step announces each finished pipeline on."""
    return f"{namespace}.done"


class NotifyDone(TaskiqMiddleware):
    """After the last step's result is saved, publish its id and step end times."""

    def __init__(self, namespace: str) -> None:
        super().__init__()
        self.channel = done_channel(namespace)
        self.client: Redis | None = None

    async def post_save(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """Announce the finished pipeline (the result is already in Redis)."""
        if int(message.labels.get(CURRENT_STEP, -1)) != STEPS_PER_FLOW - 1:
            return
        if self.client is None:
            self.client = Redis.from_url(REDIS_URL)
        ends = [] if result.is_err else result.return_value["ends"]
        payload = {"id": message.task_id, "ends": ends, "ok": not result.is_err}
        await self.client.publish(self.channel, json.dumps(payload))

    async def shutdown(self) -> None:
        """Close the Redis client."""
        if self.client is not None:
            await self.client.aclose()


@dataclass
class App:
    """One namespace's broker and its three tasks."""

    broker: AioPikaBroker
    steps: list[Any]


def make(namespace: str) -> App:
    """Build the broker of ``namespace`` and register the three tasks on it."""
    backend: RedisAsyncResultBackend[Any] = RedisAsyncResultBackend(
        REDIS_URL, result_ex_time=RESULT_TTL_S, prefix_str=results_prefix(namespace)
    )
    broker = AioPikaBroker(
        AMQP_URL,
        exchange=Exchange(name=exchange_name(namespace), type=ExchangeType.DIRECT),
        task_queues=[Queue(name=queue_name(namespace), type=QueueType.CLASSIC)],
        dead_letter_queue=Queue(name=dead_letter_queue(namespace), type=QueueType.CLASSIC),
    )
    broker = broker.with_result_backend(backend)
    broker.add_middlewares(PipelineMiddleware(), NotifyDone(namespace))

    async def step1(value: int) -> dict[str, Any]:
        """First step: starts the pipeline's value."""
        return {"value": value + 1, "ends": [time.time()]}

    async def advance(previous: dict[str, Any]) -> dict[str, Any]:
        """Second and third steps."""
        return {"value": previous["value"] + 1, "ends": [*previous["ends"], time.time()]}

    steps: list[Any] = [
        broker.register_task(step1, task_name=f"{namespace}.step1"),
        broker.register_task(advance, task_name=f"{namespace}.step2"),
        broker.register_task(advance, task_name=f"{namespace}.step3"),
    ]
    return App(broker, steps)


if "BENCH_NS" in os.environ:  # the worker: ``taskiq worker bench.taskiq_app:broker``
    APP: App = make(os.environ["BENCH_NS"])
    broker: AioPikaBroker = APP.broker
