"""Direct starts (orchestrator/direct_start.py): a client commits the first dispatch and
publishes the first command itself, exactly as the engine would, and a client that dies
between the commit and the publish strands nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from orch_serv.constants import EventKind, Lane, Phase, RunState, TimerKind
from orch_serv.exceptions import TransportError
from orch_serv.flow.policy import Timeouts
from orch_serv.observability import metrics, tracing
from orch_serv.orchestrator import direct_start
from orch_serv.orchestrator.app import Running
from orch_serv.orchestrator.client import Client
from orch_serv.settings import Settings
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.replica import Replica
from orch_serv.store.timers import TimerId
from orch_serv.transport.base import Transport
from tests.apps.pipeline import orchestrator

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _unobserved() -> None:
    """Metrics and tracing off in this process: an in-process API app of an earlier test
    (its /metrics route) turns metrics on for good, and an observed orchestrator has its
    clients send a START (orchestrator/direct_start.py). Tests that want them turn them on."""
    metrics.disable()
    tracing.disable()


class Recording:
    """A transport that records the routing keys it publishes to; with ``fail``, the publish
    of a service command raises instead (a client that dies before its publish)."""

    def __init__(self, inner: Transport, *, fail: bool = False) -> None:
        self._inner = inner
        self.fail = fail
        self.keys: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        kind: str | None = None,
    ) -> None:
        if self.fail and kind == "command":
            raise TransportError("the client died before its publish")
        self.keys.append(routing_key)
        await self._inner.publish(
            routing_key, body, message_id=message_id, headers=headers, kind=kind
        )


def client_of(running: Running, transport: Recording) -> Client:
    return Client(transport, running.store)


@pytest.fixture
async def running(
    any_backends: tuple[Any, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    transport, store = any_backends
    quick = settings.model_copy(
        update={"housekeeping_interval_seconds": 0.1, "stranded_after_seconds": 0.2}
    )
    async with orchestrator.attach(transport, store, quick, with_services=True) as running:
        yield running


async def test_a_direct_start_sends_no_start_and_runs_like_one(running: Running) -> None:
    recording = Recording(running.transport)  # type: ignore[arg-type]
    client = client_of(running, recording)
    run_id = await client.start("pipeline", {"n": 3}, key="direct-1")
    topology = running.transport.topology  # type: ignore[union-attr]
    assert recording.keys == [topology.service_key("math")]  # no START to the orchestrators
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"n": 3, "trail": ["one", "two", "three"]}
    kinds = [(e.kind, e.step, e.attempt) for e in await running.events(run_id)]
    assert kinds[:3] == [
        (EventKind.RUN_CREATED, None, None),
        (EventKind.RUN_STARTED, None, None),
        (EventKind.STEP_DISPATCHED, 0, 1),
    ]
    assert [k for k in kinds if k[0] is EventKind.STEP_COMPLETED] == [
        (EventKind.STEP_COMPLETED, 0, 1),
        (EventKind.STEP_COMPLETED, 1, 1),
        (EventKind.STEP_COMPLETED, 2, 1),
    ]
    # the same key again: the same run, nothing published
    assert await client.start("pipeline", {"n": 3}, key="direct-1") == run_id
    assert len(recording.keys) == 1


async def test_a_client_that_dies_before_the_publish_strands_nothing(running: Running) -> None:
    recording = Recording(running.transport, fail=True)  # type: ignore[arg-type]
    client = client_of(running, recording)
    with pytest.raises(TransportError):
        await client.start("pipeline", {"n": 4}, key="direct-2")
    # the run was committed: a second start with the key finds it (and publishes nothing)
    run_id = await running.start("pipeline", {"n": 0}, key="direct-2")
    record = await running.wait(run_id, timeout=30)
    assert record.state is RunState.SUCCEEDED
    assert record.result == {"n": 4, "trail": ["one", "two", "three"]}
    completed = [
        (e.step, e.attempt)
        for e in await running.events(record.run_id)
        if e.kind is EventKind.STEP_COMPLETED
    ]
    assert completed == [(0, 1), (1, 1), (2, 1)]


async def test_the_client_plans_with_the_orchestrators_default_timeouts(
    any_backends: tuple[Any, RedisRunStore], settings: Settings
) -> None:
    transport, store = any_backends
    custom = settings.model_copy(update={"default_timeouts": Timeouts(dispatch=120, total=600)})
    # no services: the command waits in its queue and the run stays at step 0
    async with orchestrator.attach(transport, store, custom) as running:
        recording = Recording(transport)
        client = client_of(running, recording)
        before = time.time()
        run_id = await client.start("pipeline", {"n": 1})
        assert recording.keys == [transport.topology.service_key("math")]
        record = await running.get(run_id)
        assert (record.state, record.step, record.attempt, record.phase) == (
            RunState.RUNNING,
            0,
            1,
            Phase.DISPATCHED,
        )
        timers = store.keys.of_run(run_id).timers
        dispatch = str(TimerId(run_id, TimerKind.DISPATCH, Lane.RUN, 0, 1))
        total = str(TimerId(run_id, TimerKind.TOTAL, Lane.RUN, 0, 0))
        due_dispatch = await store.redis.zscore(timers, dispatch)
        due_total = await store.redis.zscore(timers, total)
        assert due_dispatch is not None and due_total is not None
        assert before + 119.99 <= due_dispatch / 1000 <= time.time() + 120
        assert before + 599.99 <= due_total / 1000 <= time.time() + 600
        # the publish was confirmed: the start guard is gone
        assert await store.redis.zscore(timers, direct_start.guard_member(run_id)) is None


async def test_observed_or_disabled_orchestrators_withdraw_the_descriptor(
    backends: tuple[Any, RedisRunStore], settings: Settings
) -> None:
    _, store = backends
    namespace = settings.namespace
    await direct_start.publish(store, settings, "orchestrator", observed=False)
    assert await direct_start.read(store, namespace) is None  # no replica alive
    replica = Replica("r1", frozenset({"pipeline"}), "host", 1, time.time())
    await store.replicas(namespace).announce(replica, ttl=30)
    found = await direct_start.read(store, namespace)
    assert found is not None and found.planner.reply_to == "orchestrator"
    await direct_start.publish(store, settings, "orchestrator", observed=True)
    assert await direct_start.read(store, namespace) is None
    await direct_start.publish(store, settings, "orchestrator", observed=False)
    off = settings.model_copy(update={"direct_starts": False})
    await direct_start.publish(store, off, "orchestrator", observed=False)
    assert await direct_start.read(store, namespace) is None
    await direct_start.publish(store, settings, "orchestrator", observed=False)
    await store.replicas(namespace).withdraw("r1")  # the last replica stopped
    assert await direct_start.read(store, namespace) is None


async def test_a_flow_whose_first_step_has_a_pre_hook_is_started_by_a_start(
    running: Running,
) -> None:
    spec = await running.resolve("pipeline")
    first = spec.steps[0].model_copy(update={"pre_hook": "hook"})
    hooked = spec.model_copy(update={"steps": (first, *spec.steps[1:])})
    assert direct_start.eligible(spec)
    assert not direct_start.eligible(hooked)
    recording = Recording(running.transport)  # type: ignore[arg-type]
    client = client_of(running, recording)
    client._specs[("pipeline", None)] = (hooked, time.monotonic() + 60)
    run_id = await client.start("pipeline", {"n": 2})
    assert recording.keys == [running.transport.topology.orchestrator_key]  # type: ignore[union-attr]
    assert (await running.wait(run_id, timeout=30)).state is RunState.SUCCEEDED
