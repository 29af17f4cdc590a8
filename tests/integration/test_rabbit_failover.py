"""A list of RabbitMQ URLs: the first node that answers is used, and a lost connection fails
over to the next node of the list. Two TCP proxies (``chaos.proxy``, separate processes) in
front of the real RabbitMQ stand for two nodes: killing the one in use leaves only the other,
so runs that still succeed went through the failover."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from chaos.proxy import ProxyProcess
from orch_serv.backends import open_backends
from orch_serv.constants import RunState
from orch_serv.exceptions import PublishError, TransportError
from orch_serv.settings import Settings
from orch_serv.transport.failover import FailoverConnection
from orch_serv.transport.rabbit import RabbitTransport
from tests.api.server import free_port
from tests.apps.pipeline import orchestrator
from tests.conftest import start_once_back

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def node(port: int) -> str:
    return f"amqp://guest:guest@127.0.0.1:{port}/"


@pytest_asyncio.fixture
async def proxies() -> AsyncIterator[tuple[ProxyProcess, ProxyProcess]]:
    first = await ProxyProcess.start("127.0.0.1", 5672)
    second = await ProxyProcess.start("127.0.0.1", 5672)
    try:
        yield first, second
    finally:
        await first.stop()
        await second.stop()


async def test_the_first_node_that_answers_is_used(settings: Settings) -> None:
    listed = settings.model_copy(update={"amqp_url": f"{node(free_port())},{node(5672)}"})
    async with open_backends(listed) as (transport, _):
        assert isinstance(transport, RabbitTransport)
        assert (await transport.queue_stats(transport.topology.dead_letter_queue)) is not None


async def test_no_node_answering_is_a_clear_error(settings: Settings) -> None:
    dead = f"amqp://guest:secret@127.0.0.1:{free_port()}/,{node(free_port())}"
    with pytest.raises(TransportError) as caught:
        await RabbitTransport.connect(dead, namespace=settings.namespace, timeout=2)
    message = str(caught.value)
    assert "cannot connect to RabbitMQ" in message and "secret" not in message


@pytest.mark.filterwarnings("ignore:unclosed <StreamWriter:ResourceWarning")
async def test_a_lost_node_fails_over_to_the_next(
    settings: Settings, proxies: tuple[ProxyProcess, ProxyProcess]
) -> None:
    first, second = proxies
    listed = settings.model_copy(update={"amqp_url": f"{node(first.port)},{node(second.port)}"})
    async with (
        open_backends(listed) as (transport, store),
        orchestrator.attach(transport, store, listed, with_services=True) as running,
    ):
        assert isinstance(transport, RabbitTransport)
        before = await running.start("pipeline", {"n": 1})
        assert (await running.wait(before, timeout=30)).state is RunState.SUCCEEDED
        connection = transport.connection
        assert isinstance(connection, FailoverConnection) and connection.node == 0
        await first.stop()  # the node in use dies: only the second one is left

        after = await start_once_back(running, {"n": 2}, errors=(PublishError,))
        record = await running.wait(after, timeout=60)
        assert connection.node == 1
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"n": 2, "trail": ["one", "two", "three"]}
    gc.collect()  # the dropped connection's StreamWriter (as in test_reconnect.py)


async def test_a_socket_closed_before_the_first_frame_is_a_clear_error() -> None:
    """A listener that accepts and closes at once (a cut connection): on uvloop (the CLI's
    loop) aiormq then ends with a bare StopAsyncIteration, which must be a TransportError like
    any failed connection (found by the chaos suite)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def close_at_once() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()  # a clean EOF before any frame

    thread = threading.Thread(target=close_at_once, daemon=True)
    thread.start()
    try:
        attempts = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.connect_attempts",
            str(port),
            "50",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await attempts.communicate()
        raised = json.loads(out)
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
    assert raised == {"TransportError": 50}
