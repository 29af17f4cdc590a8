"""What the views show of a run's group steps: their members (child runs) by state and ids.

``orch-serv status`` (and ``--history``), the API's run document and the dashboard's run page
show, for each group step the run has reached, how many members ended in each state, how many
run or wait to be started, and the members' run ids (the first :data:`LISTED`; every member's
id is ``<run>~<step>.<attempt>.<member>``, so any other one can be looked up as well).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from orch_serv.constants import EventKind, RunState
from orch_serv.flow.groups import GroupSpec, member_id
from orch_serv.orchestrator.core.joins import counts
from orch_serv.store.base import Event, RunRecord, RunStore
from orch_serv.store.groups import STARTED, TOTAL, joins_of

#: Members listed by id in a view (the counts cover them all).
LISTED: Final = 20


@dataclass(frozen=True, slots=True)
class Member:
    """One member: its index, label (a branch's name, or the element's index), run id and
    state (``RUNNING`` while it has not ended, ``WAITING`` before it is started)."""

    index: int
    label: str
    run_id: str
    state: str


@dataclass(frozen=True, slots=True)
class GroupView:
    """One group step's members, as the views show them."""

    step: int
    step_name: str
    attempt: int
    kind: str
    join: str
    total: int
    counts: dict[str, int]
    members: tuple[Member, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``groups`` entry of a run's JSON document."""
        return {
            "step": self.step,
            "step_name": self.step_name,
            "attempt": self.attempt,
            "kind": self.kind,
            "join": self.join,
            "total": self.total,
            "counts": self.counts,
            "members": [
                {"index": m.index, "label": m.label, "run_id": m.run_id, "state": m.state}
                for m in self.members
            ],
        }

    def lines(self) -> list[str]:
        """The lines under a run's status table."""
        states = ", ".join(f"{n} {state}" for state, n in self.counts.items()) or "none yet"
        head = (
            f"group {self.step_name!r} (step {self.step + 1}, attempt {self.attempt}, "
            f"{self.kind}, join {self.join}): {self.total} member(s): {states}"
        )
        rows = [f"  {m.label}: {m.run_id} {m.state}" for m in self.members]
        if self.total > len(self.members):
            rows.append(f"  ... {self.total - len(self.members)} more")
        return [head, *rows]


def _places(record: RunRecord, events: Sequence[Event]) -> list[tuple[int, int]]:
    """The (step, attempt) of each group the run started members of, and its current one."""
    places = [(e.step, e.attempt) for e in events if e.kind is EventKind.MEMBERS_STARTED]
    found = [(s, a) for s, a in places if s is not None and a is not None]
    found.append((record.step, record.attempt))
    return list(dict.fromkeys(found))


async def group_views(
    store: RunStore, record: RunRecord, events: Sequence[Event] = ()
) -> list[GroupView]:
    """The groups of ``record`` (its current step's; with its history, every one it ran)."""
    from orch_serv.store.redis_base import RedisBase  # loads redis: not at import

    if not isinstance(store, RedisBase):
        return []
    spec = await store.get_spec(record.kind, record.flow, record.version)
    if spec is None:
        return []
    joins = joins_of(store)
    views = []
    for step_index, attempt in _places(record, events):
        step = spec.step(step_index)
        if step is None or step.group is None:
            continue
        fields = await joins.read(record.run_id, step_index, attempt)
        if not fields:
            continue
        views.append(_view(record.run_id, step.name, step_index, attempt, step.group, fields))
    return views


def _view(
    run_id: str, name: str, step: int, attempt: int, group: GroupSpec, fields: dict[str, str]
) -> GroupView:
    total = int(fields.get(TOTAL, 0))
    started = int(fields.get(STARTED, 0))
    ended = {int(k): RunState(v) for k, v in fields.items() if not k.startswith("#")}
    members = []
    for m in range(min(total, LISTED)):
        state = ended[m].value if m in ended else "RUNNING" if m < started else "WAITING"
        label = group.branches[m].name if group.kind == "parallel" else str(m)
        members.append(Member(m, label, member_id(run_id, step, attempt, m), state))
    return GroupView(
        step,
        name,
        attempt,
        group.kind,
        group.join,
        total,
        counts(total, started, ended),
        tuple(members),
    )


__all__ = ["LISTED", "GroupView", "Member", "group_views"]
