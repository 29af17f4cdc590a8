"""Opening a namespace on RabbitMQ: declaring its topology, or checking (passively, creating
nothing) that it exists; the connection's name and negotiated frame size."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from yarl import URL

from orch_serv.exceptions import TransportError
from orch_serv.transport.base import QueueStats, Topology
from orch_serv.transport.rabbit_delivery import AMQP_ERRORS

_DEFAULT_FRAME_MAX = 131072


async def declare_topology(
    connection: AbstractRobustConnection, topology: Topology, quorum: bool
) -> tuple[AbstractChannel, AbstractExchange, AbstractExchange]:
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await channel.declare_exchange(
        topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dlx = await channel.declare_exchange(
        topology.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    await channel.declare_exchange(
        topology.control_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead = await channel.declare_queue(
        topology.dead_letter_queue, durable=True, arguments=queue_type(quorum)
    )
    await dead.bind(dlx, topology.dead_key)
    return channel, exchange, dlx


async def check_topology(connection: AbstractRobustConnection, topology: Topology) -> None:
    """Passively check that the namespace exists (each failed check costs a channel)."""
    checks = (
        ("dead-letter queue", topology.dead_letter_queue, True),
        ("exchange", topology.exchange, False),
        ("dead-letter exchange", topology.dead_letter_exchange, False),
    )
    for what, name, is_queue in checks:
        channel = await connection.channel(publisher_confirms=False)
        try:
            if is_queue:
                await channel.declare_queue(name, passive=True)
            else:
                await channel.declare_exchange(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise TransportError(
                f"namespace {topology.namespace!r} has no {what} ({name!r}): nothing has run "
                "there (check --namespace)"
            ) from None
        finally:
            with contextlib.suppress(*AMQP_ERRORS, RuntimeError):
                await channel.close()


def frame_max(connection: AbstractRobustConnection) -> int:
    """The negotiated frame size (a content header must fit in one frame)."""
    underlay: Any = getattr(connection, "transport", None)
    tune = getattr(getattr(underlay, "connection", None), "connection_tune", None)
    value = getattr(tune, "frame_max", 0)
    return int(value) if isinstance(value, int) and value > 0 else _DEFAULT_FRAME_MAX


def named(url: str, namespace: str) -> URL:
    """The URL with a connection name operators can see in RabbitMQ (unless it has one)."""
    parsed = URL(url)
    if "name" in parsed.query:
        return parsed
    return parsed.update_query(name=f"orch_serv:{namespace}:{os.getpid()}")


def queue_type(quorum: bool) -> dict[str, Any]:
    return {"x-queue-type": "quorum"} if quorum else {}


async def queue_stats(connection: AbstractRobustConnection, queue: str) -> QueueStats | None:
    """Ready messages and consumers of ``queue`` by a passive declare on a throwaway channel
    (the broker closes a channel whose passive declare fails); None when it does not exist."""
    try:
        channel = await connection.channel(publisher_confirms=False)
    except AMQP_ERRORS as exc:
        raise TransportError(f"cannot open a channel: {exc}") from exc
    try:
        declared = await channel.declare_queue(queue, passive=True)
    except aiormq.exceptions.ChannelNotFoundEntity:
        return None
    except AMQP_ERRORS as exc:
        raise TransportError(f"cannot look at queue {queue!r}: {exc}") from exc
    finally:
        with contextlib.suppress(*AMQP_ERRORS, RuntimeError):
            await channel.close()
    result = declared.declaration_result
    return QueueStats(queue, int(result.message_count or 0), int(result.consumer_count or 0))
