"""The contract suites run unchanged against the embedded and the real backends, so that a
difference in behaviour shows up as a failing test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.base import Transport
from orch_serv.transport.memory import MemoryTransport
from orch_serv.transport.rabbit import RabbitTransport
from tests.conftest import AMQP_URL, REDIS_URL, cleanup, unique_name

#: Opens a transport; ``batch_max`` as ``publish_batch_max`` (64 by default, 1: never batch).
TransportFactory = Callable[..., Awaitable[Transport]]


@pytest.fixture(params=["memory", "rabbitmq"])
async def transport_factory(request: pytest.FixtureRequest) -> AsyncIterator[TransportFactory]:
    """Opens transports on one broker (embedded or RabbitMQ) under a namespace of its own."""
    namespace = unique_name("tc")
    broker = f"memory://{uuid.uuid4().hex}"
    opened: list[Transport] = []

    async def factory(*, batch_max: int = 64) -> Transport:
        if request.param == "memory":
            transport: Transport = await MemoryTransport.connect(
                broker, namespace=namespace, batch_max=batch_max
            )
        else:
            transport = await RabbitTransport.connect(
                AMQP_URL, namespace=namespace, batch_max=batch_max
            )
        opened.append(transport)
        return transport

    yield factory
    for transport in opened:
        await transport.close()
    if request.param == "rabbitmq":
        await cleanup(namespace, namespace)


@pytest.fixture
async def transport(transport_factory: TransportFactory) -> Transport:
    """One transport of the parametrised backend."""
    return await transport_factory()


@pytest.fixture(params=["embedded", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RedisRunStore]:
    """The run store on fakeredis (embedded) or on the real Redis."""
    prefix = unique_name("ts")
    url = f"memory://{uuid.uuid4().hex}" if request.param == "embedded" else REDIS_URL
    store = await RedisRunStore.connect(url, prefix=prefix, retention_seconds=60)
    yield store
    await store.close()
    if request.param == "redis":
        await cleanup(prefix, prefix)
