"""A service process whose AMQP connection drops while it starts (issue #8) retries the start
with back-off instead of exiting, and then serves a real run.

The service is a separate `orch-serv service` process that reaches RabbitMQ through a TCP
proxy run by the test; the proxy cuts the connection the moment the process declares its
service queue (so the declare fails exactly as in the field: "cannot declare queue"), and
lets the robust connection's reconnect through.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from orch_serv.constants import RunState
from orch_serv.exceptions import TransportError
from orch_serv.orchestrator.app import Running
from orch_serv.service.worker import ServiceWorker
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests.apps.hardening import orchestrator, work
from tests.conftest import eventually

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "orch-serv")


class CuttingProxy:
    """Forwards TCP to RabbitMQ; cuts every open connection once ``trigger`` has been sent
    by a client (once only)."""

    def __init__(self, trigger: bytes) -> None:
        self.trigger = trigger
        self.cut = asyncio.Event()
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pump(reader, up_writer, watch=True),
            self._pump(up_reader, writer, watch=False),
            return_exceptions=True,
        )
        for w in (writer, up_writer):
            w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, watch: bool
    ) -> None:
        tail = b""
        while data := await reader.read(65536):
            if watch and not self.cut.is_set() and self.trigger in tail + data:
                self.cut.set()
                for w in self._writers:
                    w.transport.abort()  # every connection dies mid-declare
                return
            tail = (tail + data)[-len(self.trigger) :]
            writer.write(data)
            await writer.drain()


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [CLI, "service", "tests.apps.hardening:work"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )


@pytest.fixture
async def engine(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    transport, store = backends
    async with orchestrator.attach(transport, store, settings) as running:
        yield running


async def test_service_retries_its_start_after_the_connection_drops(
    engine: Running, settings: Settings, tmp_path: Path
) -> None:
    queue = settings.namespace + ".svc.work"
    proxy = CuttingProxy(queue.encode())
    async with proxy as port:
        env = {
            **os.environ,
            "ORCH_SERV_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/",
            "ORCH_SERV_REDIS_URL": "redis://127.0.0.1:6379/0",
            "ORCH_SERV_NAMESPACE": settings.namespace,
            "ORCH_SERV_KEY_PREFIX": settings.key_prefix,
            "ORCH_SERV_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
        log_path = tmp_path / "service.log"
        proc = _spawn(env, log_path)
        try:
            await asyncio.wait_for(proxy.cut.wait(), 60)

            def log_text() -> str:
                return log_path.read_text(errors="replace")

            async def started() -> bool:
                assert proc.poll() is None, f"the service exited:\n{log_text()}"
                return "service_started" in log_text()

            await eventually(started, timeout=90)
            text = log_text()
            assert "service_start_retry" in text, text
            assert proxy.connections >= 2  # the robust connection came back through the proxy
            run_id = await engine.start("act_flow", {"n": 11})
            record = await engine.wait(run_id, timeout=60)
            assert record.state is RunState.SUCCEEDED, log_text()
            assert record.result == {"n": 11}
            assert proc.poll() is None
        finally:
            if proc.poll() is None:
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 30)
            if proc.poll() is None:
                proc.kill()
                await asyncio.to_thread(proc.wait)


class NoControl:
    """The real transport, except that consuming the control exchange always fails."""

    def __init__(self, inner: RabbitTransport) -> None:
        self.inner = inner
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def consume_control(self, handler: Any) -> Any:
        self.attempts += 1
        raise TransportError("cannot consume the control exchange: channel closed")


async def test_start_gives_up_after_the_configured_attempts(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    transport = NoControl(backends[0])
    limited = settings.model_copy(update={"start_attempts": 3, "start_backoff_max_seconds": 0.05})
    worker = ServiceWorker(work, transport, limited)
    with capture_logs() as logs, pytest.raises(TransportError, match="after 3 attempt"):
        await worker.start()
    assert transport.attempts == 3
    retries = [e for e in logs if e["event"] == "service_start_retry"]
    assert [e["attempt"] for e in retries] == [1, 2]
    assert all("control exchange" in e["error"] for e in retries)
    await worker.stop()


async def test_stop_ends_a_start_that_is_still_retrying(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> None:
    transport = NoControl(backends[0])
    worker = ServiceWorker(work, transport, settings)
    starting = asyncio.create_task(worker.start())
    await eventually(lambda: asyncio.sleep(0, transport.attempts >= 2))
    await worker.stop()
    await asyncio.wait_for(starting, 30)  # returns without consuming
    assert starting.exception() is None
