"""Direct starts: a client commits a run's first dispatch itself and publishes the first
command straight to the step's service, saving the START hop through an orchestrator (a
publish, a consume, a decode): ~0.75 ms of a 3-step run's ~5.2 ms one at a time on the dev
machine (docs/performance.md, "Issue 16: the START hop").

The orchestrators decide whether their clients may do this. Each replica publishes, with its
definitions, what its planner needs (:func:`publish`): its default timeouts, its reply key and
how long a committed but unconfirmed first command may go unseen (``stranded_after_seconds``).
A client plans the first dispatch with that (the same :class:`Planner`, so the event, the
command and the timers are exactly what the engine would write) when:

- an orchestrator replica of the namespace is alive (its presence entry, see
  ``orchestrator/presence.py``): with none, a START waits in the orchestrators' queue;
- the replica allows it (``Settings.direct_starts``, on by default) and has neither metrics
  nor tracing on (their run-start counters and the run's root span are the engine's: such
  replicas withdraw the descriptor, and their clients send a START as before);
- the first step has no pre hook (user code of the orchestrator's) and is not a wait or a
  group (the engine keeps those).

Anything else (an embedded store without Redis, an old orchestrator, a block with a pre hook)
takes the START path. A client that dies between the commit and the confirmed publish leaves
the run RUNNING at step 0, DISPATCHED, with nothing in the queue: the commit therefore sets a
**start guard** timer (``TimerKind.START``) that the client removes once the publish is
confirmed (:func:`drop_guard`). If the guard falls due with the run still DISPATCHED at step 0,
attempt 1 (no service reported it), an orchestrator publishes the command again
(:func:`fire_guard`): at least once, as after an orchestrator that dies between its commit and
its publish.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from orch_serv.constants import EventKind, Lane, Phase, RunState, TimerKind
from orch_serv.exceptions import StoreError
from orch_serv.flow.policy import Timeouts
from orch_serv.flow.spec import FlowSpec
from orch_serv.logs import get_logger
from orch_serv.messages import ids
from orch_serv.messages.codec import encode, headers_for
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core.dispatch import Planner
from orch_serv.orchestrator.core.events import run_event
from orch_serv.store.base import Position, RunStore, Transition
from orch_serv.store.shape import RunFields
from orch_serv.store.timers import TimerId
from orch_serv.transport.base import Transport

if TYPE_CHECKING:
    from orch_serv.orchestrator.engine import Engine
    from orch_serv.settings import Settings

log = get_logger("orchestrator")

#: The field of the store's meta hash that holds the descriptor.
FIELD = "direct_start"
#: Removes the start guard from the timer set and from the run's timer members.
_DROP_GUARD_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
#: The script, registered once per store.
_DROP_GUARD: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class DirectStart:
    """What a client needs to plan a run's first dispatch like the orchestrators would."""

    planner: Planner
    #: Seconds after the commit when an orchestrator republishes an unconfirmed first command.
    guard_seconds: float


@dataclass(frozen=True, slots=True)
class FirstDispatch:
    """The first step's commit and its command."""

    commit: Transition
    command: Envelope[Any]


def eligible(spec: FlowSpec) -> bool:
    """Whether a client can dispatch ``spec``'s first step itself (no pre hook, not kept)."""
    first = spec.steps[0]
    return first.pre_hook is None and not first.kept


def observed() -> bool:
    """Whether this process has metrics or tracing on (they count and trace run starts in the
    engine: its clients then send a START)."""
    from orch_serv.observability import metrics, tracing

    return metrics.active() is not None or tracing.active() is not None


def _redis_of(store: RunStore) -> Any:
    from orch_serv.store.redis_base import RedisBase  # loads redis: not at import

    return store if isinstance(store, RedisBase) else None


async def publish(store: RunStore, settings: Settings, reply_to: str, *, observed: bool) -> None:
    """Publish (or, when off or ``observed``, withdraw) this replica's descriptor."""
    redis_store = _redis_of(store)
    if redis_store is None:
        return
    meta = redis_store.keys.meta
    if not settings.direct_starts or observed:
        await redis_store._call("direct_start", redis_store.redis.hdel(meta, FIELD))
        return
    descriptor = {
        "timeouts": settings.default_timeouts.model_dump(mode="json"),
        "reply_to": reply_to,
        "guard_seconds": settings.stranded_after_seconds,
    }
    await redis_store._call(
        "direct_start", redis_store.redis.hset(meta, FIELD, orjson.dumps(descriptor))
    )


async def read(store: RunStore, namespace: str) -> DirectStart | None:
    """The published descriptor, or None: direct starts off, nothing published, or no
    orchestrator replica of ``namespace`` alive (a run started then waits in the
    orchestrators' queue, as ``orch-serv status`` shows, rather than in a service's)."""
    redis_store = _redis_of(store)
    if redis_store is None:
        return None
    from orch_serv.store.replicas import RedisReplicas

    replicas = store.replicas(namespace)
    if not isinstance(replicas, RedisReplicas):
        return None
    redis = redis_store.redis
    raw, alive = await redis_store._call(  # two commands: the keys may be on two cluster nodes
        "direct_start",
        asyncio.gather(redis.hget(redis_store.keys.meta, FIELD), redis.exists(replicas.key)),
    )
    if not raw or not alive:
        return None
    try:
        data = orjson.loads(raw)
        planner = Planner(Timeouts.model_validate(data["timeouts"]), str(data["reply_to"]))
        return DirectStart(planner, float(data["guard_seconds"]))
    except (ValueError, KeyError, TypeError):  # written by another version: take the START path
        log.warning("direct_start_descriptor_unreadable")
        return None


def guard_member(run_id: str) -> str:
    """The start guard's member in the timer set."""
    return str(TimerId(run_id, TimerKind.START, Lane.RUN, 0, 1))


def first_dispatch(
    direct: DirectStart,
    spec: FlowSpec,
    run_id: str,
    body: Any,
    now: float,
    traceparent: str | None,
) -> FirstDispatch:
    """PENDING -> RUNNING at step 0, DISPATCHED: what the engine's ``on_start`` commits for a
    first step without a pre hook, plus the start guard."""
    first = spec.steps[0]
    planned = direct.planner.dispatch(
        spec,
        first,
        lane=Lane.RUN,
        run_id=run_id,
        attempt=1,
        body=body,
        now=now,
        traceparent=traceparent,
    )
    dispatched = Position(RunState.RUNNING, 0, 1, Phase.DISPATCHED)
    guard = guard_member(run_id)
    commit = Transition(
        run_id=run_id,
        expect=Position(RunState.PENDING, 0, 0, Phase.QUEUED),
        new=dispatched,
        # what the START would have caused: a START of a second client with the same key,
        # which saw the run still PENDING, finds the transition applied and publishes nothing
        cause=ids.start_id(run_id),
        now=now,
        step_name=first.name,
        fields=RunFields(step_input=body),
        events=[run_event(EventKind.RUN_STARTED, now), planned.event],
        timers_add=[*planned.timers, (guard, now + direct.guard_seconds)],
    )
    return FirstDispatch(commit, planned.command)


async def send_first(
    transport: Transport, store: RunStore, command: Envelope[Any], data: bytes = b""
) -> None:
    """Publish a committed first command (``data``: encoded already), confirmed, then drop
    its start guard."""
    assert command.service is not None
    await transport.publish(
        transport.topology.service_key(command.service),
        data or encode(command),
        message_id=command.message_id,
        headers=headers_for(command),
        kind=command.kind.value,
    )
    try:
        await drop_guard(store, command.run_id)
    except StoreError:  # the run is under way; the guard only republishes an unseen command
        log.warning("start_guard_kept", run_id=command.run_id, exc_info=True)


async def drop_guard(store: RunStore, run_id: str) -> None:
    """Remove the start guard of ``run_id``: its first command's publish was confirmed.
    Unconditional (whatever the run did since, the command is out); a two-command script
    through the store's pipeliner (batched with the other calls of the event-loop turn:
    redis-py's own pipeline cost the client as much again as the rest of a start)."""
    redis_store = _redis_of(store)
    if redis_store is None:
        return
    script = _DROP_GUARD.get(redis_store)
    if script is None:
        from orch_serv.store.scripts import register  # loads redis: not at import

        script = _DROP_GUARD[redis_store] = register(redis_store.redis, _DROP_GUARD_LUA)
    shard = redis_store.keys.of_run(run_id)
    keys = [shard.timers, shard.run_timers(run_id)]
    call = redis_store._pipelined(script, keys=keys, args=[guard_member(run_id)])
    await redis_store._call("drop_guard", call)


async def fire_guard(engine: Engine, timer: TimerId) -> None:
    """A start guard fell due: republish the first command if no service reported it and the
    client never confirmed it (the run is still DISPATCHED at step 0, attempt 1)."""
    record = await engine.store.get_run(timer.run_id)
    if record is None or (record.state, record.step, record.attempt, record.phase) != (
        RunState.RUNNING,
        0,
        1,
        Phase.DISPATCHED,
    ):
        return
    definition = await engine.definitions.get(record.kind, record.flow, record.version)
    spec = definition.spec
    planned = engine.planner.dispatch(
        spec,
        spec.steps[0],
        lane=Lane.RUN,
        run_id=record.run_id,
        attempt=1,
        body=record.step_input,
        now=engine.clock(),
    )
    log.warning("direct_start_recovered", run_id=record.run_id)
    await engine._publish(planned.command)


__all__ = [
    "FIELD",
    "DirectStart",
    "FirstDispatch",
    "drop_guard",
    "eligible",
    "fire_guard",
    "first_dispatch",
    "guard_member",
    "observed",
    "publish",
    "read",
    "send_first",
]
