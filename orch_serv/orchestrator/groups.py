"""Group steps (:mod:`orch_serv.flow.groups`) on the engine's side: starting their members and
joining them.

Dispatching a group step sends no command; the dispatch sets the step's ``group`` timer, due
at once. The timer loop hands it here (any replica, under the timer's lease). A check:

1. finds the parent run elsewhere (it moved on: the group was decided, the step timed out, the
   run was cancelled): cancels the members still running and lets the join hash expire; the
   timer is then released for good;
2. else moves its own next check ``poll`` seconds on (BEFORE it looks: a member ending
   meanwhile makes it due at once again), opens the join hash and takes the timer out of the
   run's own timers (so that the run's end leaves it to do 1.);
3. reads the join hash (member -> terminal state, written by each member's terminal transition
   in the same Lua call), and decides with the policy (:mod:`orch_serv.orchestrator.core.joins`);
4. undecided: creates the members not started yet (at most ``max_concurrency`` unfinished for a
   map) and publishes their START. Both are idempotent (a member's run id is deterministic,
   ``<parent>~<step>.<attempt>.<member>``, and so is its START's id), so a crash between them is
   repaired by the next check;
5. decided: cancels the members still running if the policy says so, compensates the members
   that succeeded when the group failed, and replies like a service would, under the reply id
   of the step's command (a second check that decides again sends the same id: the engine
   keeps one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from orch_serv.constants import EventKind, Lane, Phase, RunState
from orch_serv.exceptions import InvalidRunState, RunNotFound
from orch_serv.flow.groups import MAX_MEMBERS, GroupSpec, member_id
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.logs import get_logger
from orch_serv.messages.envelope import Envelope, ErrorInfo
from orch_serv.orchestrator.core.dispatch import resume_message, start_message
from orch_serv.orchestrator.core.joins import Verdict, counts, decide
from orch_serv.orchestrator.definitions import Definitions
from orch_serv.orchestrator.waits import wait_reply
from orch_serv.store.base import (
    Event,
    NewRun,
    Outcome,
    Position,
    RunRecord,
    RunStore,
    Transition,
)
from orch_serv.store.groups import STARTED, Ended, GroupJoins, joins_of
from orch_serv.store.timers import TimerId
from orch_serv.transport.base import Transport

log = get_logger("groups")

Publish = Callable[[Envelope[Any]], Awaitable[None]]
#: Members created and started concurrently, at most, by one check.
BATCH = 500
#: Failed members a group's error lists by name (``details.failed_count`` counts them all).
LISTED_FAILURES = 100
#: The join hash's field set once the group is decided (its event is recorded once).
DECIDED = "#d"


class Groups:
    """Checks due groups for one engine."""

    def __init__(
        self,
        store: RunStore,
        definitions: Definitions,
        publish: Publish,
        transport: Transport,
        *,
        clock: Callable[[], float],
        poke: Callable[[float], None],
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.publish = publish
        self.transport = transport
        self.clock = clock
        self.poke = poke

    async def fire(self, timer: TimerId) -> None:
        """Check the group ``timer`` is about (see the module's documentation)."""
        parent = await self.store.get_run(timer.run_id)
        if parent is None:
            return
        definition = await self.definitions.get(parent.kind, parent.flow, parent.version)
        step = definition.spec.step(timer.step)
        if step is None or step.group is None:
            log.warning("group_timer_without_group", member=str(timer))
            return
        joins = joins_of(self.store)
        here = (
            parent.state is RunState.RUNNING
            and (parent.step, parent.attempt) == (timer.step, timer.attempt)
            and parent.phase is Phase.DISPATCHED
        )
        if not here:
            await self._close(joins, parent.run_id, timer.step, timer.attempt)
            return
        now = self.clock()
        due = now + step.group.poll
        await self.store.move_timer(str(timer), due)
        await self._check(joins, parent, step, step.group, now)
        self.poke(due)

    async def _check(
        self, joins: GroupJoins, parent: RunRecord, step: StepSpec, group: GroupSpec, now: float
    ) -> None:
        items = parent.step_input
        if group.kind == "map":
            if not isinstance(items, list):
                kind = type(items).__name__ if items is not None else "null"
                problem = f"a map step takes a list, not {kind}"
                await self._reply_error(parent, step, problem, now, retryable=False)
                return
            if len(items) > MAX_MEMBERS:
                await self._reply_error(
                    parent,
                    step,
                    f"a map takes at most {MAX_MEMBERS} elements, not {len(items)}",
                    now,
                    retryable=False,
                )
                return
            total = len(items)
        else:
            total = len(group.branches)
        rid, index, attempt = parent.run_id, step.index, parent.attempt
        fields = await joins.open(rid, index, attempt, total)
        await joins.detach(rid, index, attempt)
        ended = {int(k): RunState(v) for k, v in fields.items() if not k.startswith("#")}
        started = int(fields.get(STARTED, 0))
        verdict = decide(group, total, ended)
        if verdict.over:
            await self._decided(joins, parent, step, group, total, started, ended, verdict, now)
            return
        running = started - sum(1 for m in ended if m < started)
        room = total - started
        if group.max_concurrency is not None:
            room = min(room, group.max_concurrency - running)
        if room > 0:
            await self._start(
                parent, step, group, items, range(started, started + room), total, now
            )
            await joins.set_started(rid, index, attempt, started + room)

    async def _branch(self, group: GroupSpec, member: int) -> FlowSpec:
        ref = group.branches[0 if group.kind == "map" else member]
        return (await self.definitions.get("flow", ref.flow, ref.version)).spec

    async def _start(
        self,
        parent: RunRecord,
        step: StepSpec,
        group: GroupSpec,
        items: Any,
        members: range,
        total: int,
        now: float,
    ) -> None:
        """Create members (idempotent) and publish their START (idempotent too)."""

        async def one(member: int) -> None:
            spec = await self._branch(group, member)
            body = items[member] if group.kind == "map" else parent.step_input
            child = member_id(parent.run_id, step.index, parent.attempt, member)
            await self.store.create_run(NewRun(run_id=child, spec=spec, input=body, now=now))
            await self.publish(start_message(child, "flow", spec.name, spec.version, body))

        for first in range(members.start, members.stop, BATCH):
            batch = range(first, min(first + BATCH, members.stop))
            await asyncio.gather(*(one(m) for m in batch))
        if members.start == 0:  # one event, for the first members: the parent's history
            # stays the same size however many elements a map has (the join hash counts)
            event = Event(
                kind=EventKind.MEMBERS_STARTED,
                time=now,
                step=step.index,
                step_name=step.name,
                attempt=parent.attempt,
                component="orchestrator",
                body={"count": len(members), "total": total},
            )
            await self.store.record_event(parent.run_id, event, None)
        log.debug("members_started", run_id=parent.run_id, step=step.name, count=len(members))

    async def _decided(
        self,
        joins: GroupJoins,
        parent: RunRecord,
        step: StepSpec,
        group: GroupSpec,
        total: int,
        started: int,
        ended: dict[int, RunState],
        verdict: Verdict,
        now: float,
    ) -> None:
        rid, attempt = parent.run_id, parent.attempt
        running = [m for m in range(started) if m not in ended]
        if verdict.cancel_rest and running:
            await self._cancel(rid, step.index, attempt, running, "the group was decided")
        children = [member_id(rid, step.index, attempt, m) for m in range(total)]
        outcomes = await joins.ended([c for m, c in enumerate(children) if m in ended])
        by_member = dict(zip(sorted(ended), outcomes, strict=True))
        if not verdict.ok:
            await self._compensate(group, children, by_member)
        first = await joins.mark_decided(rid, step.index, attempt, DECIDED)
        if first:
            event = Event(
                kind=EventKind.GROUP_JOINED,
                time=now,
                step=step.index,
                step_name=step.name,
                attempt=attempt,
                component="orchestrator",
                body={"ok": verdict.ok, "members": counts(total, started, ended)},
                reason=verdict.reason or None,
            )
            await self.store.record_event(rid, event, None)
        if verdict.ok:
            body = join_result(group, total, by_member)
            await self.publish(wait_reply(parent, step, body, now))
            return
        failed = [m for m in sorted(ended) if ended[m] is not RunState.SUCCEEDED]
        # the first ones by name: the error stays small however many failed
        listed = {
            _label(group, m): _state(by_member[m], ended[m]) for m in failed[:LISTED_FAILURES]
        }
        details = {"failed": listed, "failed_count": len(failed)}
        await self._reply_error(
            parent, step, f"group {step.name!r}: {verdict.reason}", now, details
        )

    async def _reply_error(
        self,
        parent: RunRecord,
        step: StepSpec,
        message: str,
        now: float,
        details: dict[str, Any] | None = None,
        *,
        retryable: bool = True,
    ) -> None:
        """Fail the step: a reply with the error ``GroupFailed`` (retryable, so that the
        step's retry policy may run the group again, unless the input itself is wrong)."""
        error = ErrorInfo(type="GroupFailed", message=message, retryable=retryable, details=details)
        reply = wait_reply(parent, step, None, now).model_copy(update={"error": error})
        await self.publish(reply)

    async def _cancel(
        self, parent: str, step: int, attempt: int, members: Sequence[int], reason: str
    ) -> None:
        for first in range(0, len(members), BATCH):
            batch = members[first : first + BATCH]
            await asyncio.gather(
                *(self._cancel_one(member_id(parent, step, attempt, m), reason) for m in batch)
            )

    async def _cancel_one(self, run_id: str, reason: str) -> None:
        """Cancel one member run (as ``orch-serv cancel`` does); one that ended meanwhile, or
        that is gone, is left alone."""
        from orch_serv.orchestrator.client import Client

        try:
            await Client(self.transport, self.store, clock=self.clock).cancel(run_id, reason=reason)
        except (InvalidRunState, RunNotFound):
            return

    async def _close(self, joins: GroupJoins, parent: str, step: int, attempt: int) -> None:
        """The run left the group: cancel its members still running, let the join expire."""
        fields = await joins.read(parent, step, attempt)
        if not fields:
            return
        started = int(fields.get(STARTED, 0))
        running = [m for m in range(started) if str(m) not in fields]
        if running:
            await self._cancel(parent, step, attempt, running, "the run left the group step")
        await joins.expire(parent, step, attempt)

    async def _compensate(
        self, group: GroupSpec, children: Sequence[str], by_member: dict[int, Ended | None]
    ) -> None:
        """Compensate the members that succeeded (those whose flow declares compensations):
        the group failed, so their work is undone like a failed run's."""
        for member, ended in by_member.items():
            if ended is None or ended.state is not RunState.SUCCEEDED:
                continue
            spec = await self._branch(group, member)
            comp = spec.compensation_before(len(spec.steps))
            if comp is not None:
                await self._compensate_one(children[member], spec, comp.index)

    async def _compensate_one(self, child: str, spec: FlowSpec, index: int) -> None:
        now = self.clock()
        change = Transition(
            run_id=child,
            expect=Position(RunState.SUCCEEDED, None, None),
            new=Position(RunState.COMPENSATING, index, 1, Phase.QUEUED),
            cause=f"{child}:group-failed",
            now=now,
            fields={"outcome": RunState.CANCELLED.value},
            events=[
                Event(
                    kind=EventKind.RUN_STOPPED,
                    time=now,
                    component="orchestrator",
                    reason="its group failed: compensating",
                )
            ],
        )
        result = await self.store.transition(change)
        if result.outcome in (Outcome.APPLIED, Outcome.ALREADY_APPLIED):
            await self.publish(
                resume_message(
                    child,
                    "flow",
                    spec.name,
                    spec.version,
                    step=index,
                    attempt=1,
                    lane=Lane.COMPENSATE,
                )
            )


def _state(ended: Ended | None, recorded: RunState) -> str:
    """A member's state: its run's (it may have moved on, to COMPENSATED say), else the
    join's."""
    return (ended.state if ended is not None else recorded).value


def _label(group: GroupSpec, member: int) -> str:
    return group.branches[member].name if group.kind == "parallel" else str(member)


def _entry(ended: Ended | None) -> dict[str, Any]:
    if ended is None:
        return {"state": "UNKNOWN"}
    if ended.state is RunState.SUCCEEDED:
        return {"state": ended.state.value, "result": ended.result}
    error = ended.error.model_dump(exclude_none=True) if ended.error else None
    return {"state": ended.state.value, "error": error}


def join_result(group: GroupSpec, total: int, by_member: dict[int, Ended | None]) -> Any:
    """The body a decided group hands on: a mapping by branch name (a parallel group: only
    the branches that succeeded) or a list in element order (a map: None where a member did
    not succeed); with ``collect``, each member's ``{"state", "result" | "error"}``."""
    collect = group.join == "collect"

    def value(member: int) -> Any:
        ended = by_member.get(member)
        if collect:
            return _entry(ended)
        return ended.result if ended is not None and ended.state is RunState.SUCCEEDED else None

    if group.kind == "map":
        return [value(m) for m in range(total)]
    succeeded = {m for m, e in by_member.items() if e is not None and e.state is RunState.SUCCEEDED}
    return {b.name: value(m) for m, b in enumerate(group.branches) if collect or m in succeeded}


__all__ = ["Groups", "join_result"]
