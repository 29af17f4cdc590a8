"""Maps over real RabbitMQ and Redis with separate ``orch-serv`` processes: a SIGKILL of the
orchestrator in the middle of a fan-out of 1,000 elements still counts every element once, and
what a map leaves in Redis (the figure ``docs/groups.md`` quotes) is measured.

Set ``ORCH_SERV_MAP_ELEMENTS`` (default 1000) to measure a larger map (10,000 for the doc).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from orch_serv.backends import open_backends
from orch_serv.constants import EventKind, RunState
from orch_serv.flow.groups import member_id
from orch_serv.orchestrator.client import Client
from orch_serv.settings import Settings
from orch_serv.store.base import Event
from orch_serv.store.groups import STARTED, join_key
from orch_serv.store.redis import RedisRunStore
from tests.conftest import eventually
from tests.integration.processes import CLI, ROOT, Processes

pytestmark = pytest.mark.integration

APP = "tests.apps.groups:orchestrator"


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(settings, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with open_backends(settings) as (transport, store):
        yield Client(transport, store)


def _store(client: Client) -> RedisRunStore:
    assert isinstance(client.store, RedisRunStore)
    return client.store


async def _registered(client: Client) -> None:
    async def ready() -> bool:
        return await client.store.get_spec("flow", "fanout") is not None

    await eventually(ready, timeout=60)


async def _join(client: Client, run_id: str) -> dict[str, str]:
    store = _store(client)
    key = join_key(store.keys, run_id, 0, 1)
    return await cast(Awaitable[dict[str, str]], store.redis.hgetall(key))


async def _each_member_ran_once(client: Client, run_id: str, count: int) -> None:
    store = _store(client)
    pipe = store.redis.pipeline(transaction=False)
    for m in range(count):
        pipe.lrange(store.keys.events(member_id(run_id, 0, 1, m)), 0, -1)
    histories = await pipe.execute()
    for m, raw in enumerate(histories):
        kinds = [Event.from_storage(i + 1, orjson.loads(e)).kind for i, e in enumerate(raw)]
        assert kinds.count(EventKind.STEP_COMPLETED) == 1, (m, kinds)
        assert kinds.count(EventKind.RUN_SUCCEEDED) == 1, (m, kinds)


async def test_sigkill_of_the_orchestrator_mid_fan_out_counts_each_element_once(
    processes: Processes, client: Client
) -> None:
    processes.spawn("service", APP, {"ORCH_SERV_TEST_DELAY": "0.005"})
    orchestrator = processes.spawn("orchestrator", APP)
    await _registered(client)
    count = 1000
    run_id = await client.start("fanout", list(range(count)))

    async def some_ended() -> bool:
        join = await _join(client, run_id)
        return len([k for k in join if not k.startswith("#")]) >= 150

    await eventually(some_ended, timeout=120)
    orchestrator.send_signal(signal.SIGKILL)
    orchestrator.wait(timeout=10)
    ended = [k for k in await _join(client, run_id) if not k.startswith("#")]
    assert len(ended) < count  # killed mid fan-out
    processes.spawn("orchestrator", APP)
    record = await client.wait(run_id, timeout=300)
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.result == [i + 1 for i in range(count)]  # every element, in order
    join = await _join(client, run_id)
    assert int(join[STARTED]) == count
    assert [k for k in join if not k.startswith("#")] and len(join) == count + 3  # #n #s #d
    assert set(v for k, v in join.items() if not k.startswith("#")) == {"SUCCEEDED"}
    events = await client.events(run_id)
    assert [e.kind for e in events].count(EventKind.STEP_COMPLETED) == 1
    await _each_member_ran_once(client, run_id, count)
    _status_shows_the_members(processes, run_id, count)


def _status_shows_the_members(processes: Processes, run_id: str, count: int) -> None:
    """``orch-serv status RUN --history`` lists the group's members (table and JSON)."""

    def status(*args: str) -> str:
        done = subprocess.run(
            [CLI, "status", run_id, "--history", *args],
            cwd=ROOT,
            env=processes.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    table = status()
    assert "members_started" in table and "group_joined" in table
    assert f"group 'map' (step 1, attempt 1, map, join all): {count} member(s): " in table
    assert f"{member_id(run_id, 0, 1, 0)} SUCCEEDED" in table
    (group,) = json.loads(status("--format", "json"))["run"]["groups"]
    assert group["counts"] == {"SUCCEEDED": count} and group["total"] == count


async def test_what_a_large_map_leaves_in_redis(processes: Processes, client: Client) -> None:
    count = int(os.environ.get("ORCH_SERV_MAP_ELEMENTS", "1000"))
    processes.spawn("service", APP)
    processes.spawn("orchestrator", APP)
    await _registered(client)
    store = _store(client)
    before = int((await store.redis.info("memory"))["used_memory"])
    started = time.perf_counter()
    run_id = await client.start("fanout", list(range(count)))
    record = await client.wait(run_id, timeout=600)
    elapsed = time.perf_counter() - started
    assert record.state is RunState.SUCCEEDED, record.error
    assert record.result == [i + 1 for i in range(count)]
    after = int((await store.redis.info("memory"))["used_memory"])
    keys = {
        "run hash": store.keys.run(run_id),
        "events": store.keys.events(run_id),
        "join hash": join_key(store.keys, run_id, 0, 1),
    }
    usage: dict[str, Any] = {
        name: await store.redis.memory_usage(key, samples=0) for name, key in keys.items()
    }
    join = await _join(client, run_id)
    assert len(join) == count + 3
    member = await store.redis.memory_usage(store.keys.run(member_id(run_id, 0, 1, 0)), samples=0)
    print(
        f"\nmap of {count} elements in {elapsed:.1f}s ({count / elapsed:.0f} members/s); "
        f"parent keys (bytes): {usage}; one member's run hash: {member} bytes; "
        f"used_memory delta: {(after - before) / 1e6:.1f} MB "
        f"({(after - before) / count:.0f} bytes per element, members' runs included)"
    )
    # the join hash stays small per element: a short field and a state per member
    assert usage["join hash"] < 100 * count + 1024
