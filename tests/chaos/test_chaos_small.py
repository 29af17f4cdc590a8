"""The chaos suite, small: 300 runs across 2 orchestrator and 2 service processes while
processes are SIGKILLed and broker connections cut; nothing may be lost or done twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from chaos.app import expected_result
from chaos.audit import Report, completed_twice
from chaos.proxy import ProxyProcess
from chaos.runner import ChaosConfig, session
from orch_serv.constants import EventKind
from orch_serv.store.base import Event
from tests.conftest import AMQP_URL, REDIS_URL, unique_name

pytestmark = pytest.mark.integration


async def test_a_small_chaos_session_loses_nothing_and_advances_nothing_twice(
    tmp_path: Path,
) -> None:
    prefix = unique_name("chaos")
    lines: list[str] = []
    config = ChaosConfig(
        runs=300,
        orchestrators=2,
        services=2,
        kill_every=1.5,
        cut_every=2.0,
        max_cuts=2,
        rate=50,
        drain_timeout=90,
        amqp_url=AMQP_URL,
        redis_url=REDIS_URL,
        prefix=prefix,
        seed=14,
        log_dir=tmp_path,  # the processes' stderr, should one exit on its own
    )
    report = await session(config, progress=lines.append)
    assert report.ok, report.to_json_dict()
    assert (report.runs, report.succeeded, report.start_errors) == (300, 300, 0)
    assert report.lost == 0 and report.advanced_twice == 0 and report.wrong_result == 0
    assert report.drain_seconds is not None
    # the chaos really happened: processes killed, connections cut through the proxy
    assert report.kills >= 1, lines
    assert report.cuts == 2 and report.connections_cut >= 1, lines
    assert any(line.startswith("SIGKILL ") for line in lines)
    # and the session left nothing behind in Redis
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        assert [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)] == []
    finally:
        await redis.aclose()


def _completed(step: int) -> Event:
    return Event(kind=EventKind.STEP_COMPLETED, time=1.0, step=step)


def test_a_step_completed_twice_is_detected() -> None:
    ended = Event(kind=EventKind.RUN_SUCCEEDED, time=1.0)
    once = [Event(kind=EventKind.RUN_STARTED, time=1.0), _completed(0), _completed(1), ended]
    assert completed_twice(once) == []
    assert completed_twice([*once, _completed(1)]) == [("step_completed", 1)]
    assert completed_twice([*once, ended]) == [("run_ended", -1)]


def test_a_report_with_a_lost_or_doubled_run_is_not_ok() -> None:
    assert Report(runs=3, succeeded=3).ok
    assert not Report(runs=3, succeeded=2, lost=1).ok
    assert not Report(runs=3, succeeded=3, advanced_twice=1).ok
    assert "lost (missing or stuck)  1" in Report(lost=1).table()
    assert expected_result(5) == {"n": 8, "path": [1, 2, 3]}


async def test_the_proxy_forwards_and_its_cut_aborts_every_connection() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await ProxyProcess.start("127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        assert await proxy.cut() == 1
        try:
            rest = await reader.read(1024)
        except ConnectionResetError:  # the proxy aborts: a reset or an end of stream
            rest = b""
        assert rest == b""
        writer.close()
        assert (proxy.cuts, proxy.connections_cut) == (1, 1)
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()


def test_bad_settings_are_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="runs must be >= 1"):
        ChaosConfig(runs=0)
    with pytest.raises(ValueError, match="not a RabbitMQ URL"):
        ChaosConfig(amqp_url="redis://127.0.0.1:6379/0")
