"""Numbers out of range on the wire (issue #8): a reply whose attempt is 2**64, a status whose
created_at is NaN, Infinity or -1e308 reach the real orchestrator queue; each is dead-lettered
with a reason naming the field, nothing is stored, and the run's history still reads (also
when old data holds an event without a usable time)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import cast

import orjson
import pytest
from rich.console import Console

from orch_serv.constants import EventKind, RunState
from orch_serv.orchestrator.app import Running
from orch_serv.render import event_json, history_table
from orch_serv.settings import Settings
from orch_serv.store.base import Event
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.rabbit import RabbitTransport
from tests.apps.hardening import Probe, orchestrator
from tests.conftest import eventually
from tests.integration.amqp_helpers import dead_letters, raw_headers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "orch-serv")


@pytest.fixture
async def running(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    Probe.reset()
    transport, store = backends
    async with orchestrator.attach(transport, store, settings, with_services=True) as running:
        yield running


async def _finished_run(running: Running) -> tuple[str, str]:
    run_id = await running.start("act_flow", {"n": 1})
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    return run_id, record.version


def _render(running_events: list[Event]) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(history_table("r", running_events))
    return buffer.getvalue()


async def test_out_of_range_numbers_are_dead_lettered_with_a_reason(running: Running) -> None:
    run_id, version = await _finished_run(running)
    before = await running.events(run_id)
    base = f'"run_id":"{run_id}","flow":"act_flow","flow_version":"{version}","step":0'
    bad = {
        "huge-attempt": (
            "reply",
            f'{{"kind":"reply","message_id":"huge-attempt",{base},"attempt":18446744073709551616}}',
            "attempt",
        ),
        "huge-attempt-unknown-run": (
            "reply",
            '{"kind":"reply","message_id":"huge-attempt-unknown-run","run_id":"nope",'
            '"flow":"act_flow","attempt":18446744073709551616}',
            "attempt",
        ),
        "nan-created": (
            "status",
            f'{{"kind":"status","message_id":"nan-created",{base},"attempt":1,'
            f'"created_at":NaN,"status":{{"name":"x"}}}}',
            "created_at",
        ),
        "inf-created": (
            "status",
            f'{{"kind":"status","message_id":"inf-created",{base},"attempt":1,'
            f'"created_at":1e999,"status":{{"name":"x"}}}}',
            "created_at",
        ),
        "negative-created": (
            "status",
            f'{{"kind":"status","message_id":"negative-created",{base},"attempt":1,'
            f'"created_at":-1e308,"status":{{"name":"x"}}}}',
            "created_at",
        ),
        "huge-body-int": (
            "reply",
            f'{{"kind":"reply","message_id":"huge-body-int",{base},"attempt":1,'
            f'"body":{{"n":[1,18446744073709551616]}}}}',
            "body",
        ),
    }
    transport = running.transport
    assert transport is not None
    topology = transport.topology
    for message_id, (kind, raw, _) in bad.items():
        await transport.publish(
            topology.orchestrator_key,
            raw.encode(),
            message_id=message_id,
            headers=raw_headers(kind),
            kind=kind,
        )

    async def all_dead() -> dict[str, str] | None:
        dead = await dead_letters(topology.namespace)
        return dead if set(bad) <= set(dead) else None

    dead = await eventually(all_dead)
    for message_id, (_, _, field) in bad.items():
        assert dead[message_id].startswith("invalid envelope: "), dead[message_id]
        assert field in dead[message_id], dead[message_id]
    # nothing reached the run: its history is what it was, and it still reads and renders
    after = await running.events(run_id)
    assert [e.kind for e in after] == [e.kind for e in before]
    assert all(e.time > 0 for e in after)
    assert all(isinstance(event_json(e)["time"], str) for e in after)
    assert "run_succeeded" in _render(after)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [CLI, *args], cwd=ROOT, env=env, capture_output=True, timeout=60, check=False
    )


async def test_history_with_unusable_stored_times_still_reads(
    running: Running, settings: Settings
) -> None:
    """Old data: events stored with a null or absurd time (before the limits) still read,
    in Python, in the rendered table and through `orch-serv status --history`."""
    run_id, _ = await _finished_run(running)
    store = running.store
    assert isinstance(store, RedisRunStore)
    key = store.keys.events(run_id)
    # redis-py types its commands for both clients (``Awaitable[int] | int``): this one is async
    pushed = store.redis.rpush(
        key,
        orjson.dumps({"k": "su", "t": None, "nm": "legacy_null"}).decode(),
        orjson.dumps({"k": "su", "t": -1e308, "nm": "legacy_negative"}).decode(),
        orjson.dumps({"k": "su", "nm": "legacy_missing"}).decode(),
    )
    assert await cast(Awaitable[int], pushed) > 0
    events = await running.events(run_id)
    legacy = [e for e in events if e.name and e.name.startswith("legacy_")]
    assert [e.name for e in legacy] == ["legacy_null", "legacy_negative", "legacy_missing"]
    assert all(e.kind is EventKind.STATUS and e.time == 0.0 for e in legacy)
    assert [event_json(e)["time"] for e in legacy] == [None, None, None]
    assert "legacy_negative" in _render(events)

    env = {
        **os.environ,
        "ORCH_SERV_NAMESPACE": settings.namespace,
        "ORCH_SERV_KEY_PREFIX": settings.key_prefix,
        "ORCH_SERV_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    for fmt in ("table", "json"):
        done = await asyncio.to_thread(_cli, ["status", run_id, "--history", "--format", fmt], env)
        assert done.returncode == 0, done.stderr.decode()
        assert b"legacy_negative" in done.stdout
