"""The run store contract: run records, their append-only history and the transition.

Every change of a run's position is one atomic :meth:`RunStore.transition`: it checks the
expected (state, step, attempt), and only then writes the new position, appends the events,
adds the statuses and moves the indexes. A reply that fails the check is recorded as a
``reply_ignored`` event and never advances the run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from orch_serv.constants import ACTIVE_STATES, EventKind, EventStatus, Phase, RunState
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.messages.limits import valid_timestamp

if TYPE_CHECKING:
    from orch_serv.store.replica import Replicas
    from orch_serv.store.shape import RunFields

#: Field name -> key in the stored form of an event (see ``Event.to_storage``).
STORAGE_KEYS = {
    "kind": "k",
    "time": "t",
    "step": "s",
    "step_name": "sn",
    "attempt": "a",
    "component": "c",
    "duration_ms": "d",
    "body": "b",
    "message_id": "id",
    "name": "nm",
    "reason": "r",
    "message": "msg",
    "status": "st",
    "error": "e",
}
FIELD_NAMES = {v: k for k, v in STORAGE_KEYS.items()}
#: Event kind -> its code in the stored form (``transition.lua`` writes "ri" and "lr").
KIND_CODES = {
    EventKind.RUN_CREATED: "rc",
    EventKind.RUN_STARTED: "rs",
    EventKind.RUN_RESUMED: "rr",
    EventKind.STEP_DISPATCHED: "sd",
    EventKind.STEP_STARTED: "ss",
    EventKind.HEARTBEAT: "hb",
    EventKind.STEP_COMPLETED: "sc",
    EventKind.STEP_FAILED: "sf",
    EventKind.STEP_TIMED_OUT: "st",
    EventKind.RETRY_SCHEDULED: "rt",
    EventKind.STATUS: "su",
    EventKind.STATUS_REFUSED: "sx",
    EventKind.REPLY_IGNORED: "ri",
    EventKind.LATE_RESULT: "lr",
    EventKind.RUN_STOPPED: "rp",
    EventKind.SIGNAL_RECEIVED: "sg",
    EventKind.MEMBERS_STARTED: "ms",
    EventKind.GROUP_JOINED: "gj",
    EventKind.COMPENSATION_DISPATCHED: "cd",
    EventKind.COMPENSATION_COMPLETED: "cc",
    EventKind.COMPENSATION_FAILED: "cf",
    EventKind.RUN_SUCCEEDED: "ok",
    EventKind.RUN_FAILED: "rf",
    EventKind.RUN_TIMED_OUT: "to",
    EventKind.RUN_CANCELLED: "rx",
    EventKind.RUN_COMPENSATED: "ru",
    EventKind.RUN_COMPENSATION_FAILED: "rv",
}
KINDS = {code: kind for kind, code in KIND_CODES.items()}


#: (field, stored key) of the optional fields of an event, in their stored order.
_OPTIONAL_STORED = tuple(
    (name, STORAGE_KEYS[name])
    for name in (
        "step",
        "step_name",
        "attempt",
        "component",
        "duration_ms",
        "body",
        "message_id",
        "name",
        "reason",
        "message",
    )
)
_KIND_KEY, _TIME_KEY = STORAGE_KEYS["kind"], STORAGE_KEYS["time"]
_STATUS_KEY, _ERROR_KEY = STORAGE_KEYS["status"], STORAGE_KEYS["error"]


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a run's history (``seq`` is 1-based, assigned by the store)."""

    kind: EventKind
    time: float
    seq: int = 0
    step: int | None = None
    step_name: str | None = None
    attempt: int | None = None
    status: EventStatus = EventStatus.OK
    component: str | None = None
    duration_ms: float | None = None
    body: Any = None
    error: ErrorInfo | None = None
    message_id: str | None = None
    name: str | None = None
    reason: str | None = None
    message: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The stored form: only the fields that are set (time to the microsecond)."""
        data: dict[str, Any] = {"kind": self.kind.value, "time": round(self.time, 6)}
        for name, _ in _OPTIONAL_STORED:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.status is not EventStatus.OK:
            data["status"] = self.status.value
        if self.error is not None:
            data["error"] = self.error.model_dump(exclude_none=True)
        return data

    def to_storage(self) -> dict[str, Any]:
        """The compact form kept in Redis (short keys: a run's history is most of the
        memory it holds once finished): :meth:`to_json_dict` with the keys of
        ``STORAGE_KEYS`` and the kind's code, built directly (one per transition event)."""
        data: dict[str, Any] = {_KIND_KEY: KIND_CODES[self.kind], _TIME_KEY: round(self.time, 6)}
        for name, key in _OPTIONAL_STORED:
            value = getattr(self, name)
            if value is not None:
                data[key] = value
        if self.status is not EventStatus.OK:
            data[_STATUS_KEY] = self.status.value
        if self.error is not None:
            data[_ERROR_KEY] = self.error.model_dump(exclude_none=True)
        return data

    @classmethod
    def from_storage(cls, seq: int, data: Mapping[str, Any]) -> Event:
        """Rebuild an event from its compact stored form."""
        fields = {FIELD_NAMES.get(k, k): v for k, v in data.items()}
        fields["kind"] = KINDS.get(fields["kind"], fields["kind"])
        return cls.from_json_dict(seq, fields)

    @classmethod
    def from_json_dict(cls, seq: int, data: Mapping[str, Any]) -> Event:
        """Rebuild an event from its stored form. A time that is missing or unusable (null,
        out of range: events stored before envelopes' timestamps were checked) reads as 0.0,
        which the renderers show as no time at all."""
        error = data.get("error")
        return cls(
            kind=EventKind(data["kind"]),
            time=valid_timestamp(data.get("time")) or 0.0,
            seq=seq,
            step=data.get("step"),
            step_name=data.get("step_name"),
            attempt=data.get("attempt"),
            status=EventStatus(data.get("status", "OK")),
            component=data.get("component"),
            duration_ms=data.get("duration_ms"),
            body=data.get("body"),
            error=ErrorInfo.from_stored(error) if error else None,
            message_id=data.get("message_id"),
            name=data.get("name"),
            reason=data.get("reason"),
            message=data.get("message"),
        )


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored: where it is, what it was given and how it ended."""

    run_id: str
    kind: str
    flow: str
    version: str
    state: RunState
    step: int
    step_name: str | None
    attempt: int
    steps_total: int
    created_at: float
    updated_at: float
    phase: Phase | None = None
    finished_at: float | None = None
    #: Unix time after which the run is TIMED_OUT (its flow's deadline), if any.
    deadline: float | None = None
    key: str | None = None
    #: The body the run was started with.
    input: Any = None
    #: The body sent to the current step (what a retry of that step would send again).
    step_input: Any = None
    result: Any = None
    error: ErrorInfo | None = None
    statuses: frozenset[str] = field(default_factory=frozenset)

    #: True when the run is reported TIMED_OUT because its deadline passed, before the
    #: deadline's timer has recorded it.
    expired: bool = False
    #: The current step's pre hook has not run on ``step_input`` yet (it failed before).
    hook_pending: bool = False
    #: Outputs of completed steps that declare a compensation, by step index.
    outputs: dict[int, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """True once the run is in a terminal state."""
        return self.state.terminal


@dataclass(frozen=True, slots=True)
class Position:
    """Where a run is: the compare-and-set part of a transition. In an expectation, None
    means 'any'; in a new position, a None step/attempt means 'unchanged'."""

    state: RunState
    step: int | None
    attempt: int | None
    phase: Phase | None = None


class Outcome(StrEnum):
    """What a transition did."""

    APPLIED = "APPLIED"
    #: The run is already past this message: it caused the run's latest transition.
    ALREADY_APPLIED = "ALREADY_APPLIED"
    STALE = "STALE"
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """Outcome of a transition and, unless applied, where the run really is."""

    outcome: Outcome
    #: Where the run is, after a failed check (None once applied).
    current: Position | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One atomic change of a run: expected position, new position and what to record."""

    run_id: str
    expect: Position
    new: Position
    cause: str
    now: float
    step_name: str | None = None
    #: What it writes besides the position: typed (``store.shape.RunFields``), or a mapping
    #: of stored field names that ``RunFields.of`` checks.
    fields: RunFields | Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[Event] = ()
    statuses: Sequence[str] = ()
    #: Recorded (with a reason filled in by the store) when the check fails.
    ignored: Event | None = None
    #: Other states the run may be in instead of ``expect.state``.
    also_states: frozenset[RunState] = frozenset()
    #: Timers to set: (member, due time in seconds).
    timers_add: Sequence[tuple[str, float]] = ()
    #: Timer members to remove.
    timers_remove: Sequence[str] = ()
    #: Remove every timer of the run but its deadline (always done on a terminal state).
    clear_timers: bool = False

    @classmethod
    def any_active(cls, **kwargs: Any) -> Transition:
        """A transition that applies whatever active state, step and attempt the run is in."""
        return cls(
            expect=Position(RunState.RUNNING, None, None),
            also_states=ACTIVE_STATES,
            **kwargs,
        )


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to create in state PENDING."""

    run_id: str
    spec: FlowSpec
    input: Any
    now: float
    key: str | None = None
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class CreateResult:
    """Whether a run was created, or an existing run with the same key returned."""

    created: bool
    run_id: str
    state: RunState


@dataclass(frozen=True, slots=True)
class Beat:
    """A heartbeat (or the start notice) of one attempt of a step."""

    run_id: str
    state: RunState
    step: int
    attempt: int
    now: float
    started: Event
    progress: Event | None
    dispatch_timer: str
    execution_timer: tuple[str, float] | None
    heartbeat_timer: tuple[str, float] | None


class RunStore(Protocol):
    """What the engine needs from a store. Implementations: Redis (Lua scripts)."""

    async def close(self) -> None:
        """Release connections; idempotent."""

    async def register_specs(
        self, specs: Sequence[FlowSpec], *, default_flow: str | None, default_block: str | None
    ) -> None:
        """Publish flow/block definitions so that clients and other replicas can use them."""

    async def get_spec(self, kind: str, name: str, version: str | None = None) -> FlowSpec | None:
        """The current (or a given version of a) flow or block definition."""

    async def list_specs(self) -> list[FlowSpec]:
        """Every current definition."""

    async def defaults(self) -> tuple[str | None, str | None]:
        """The registered default flow and default block."""

    def new_run_id(self, key: str | None = None) -> str:
        """A fresh run id for a run started with ``key`` (or none): :meth:`create_run` needs
        a keyed run's id to come from here."""

    async def create_run(self, new: NewRun) -> CreateResult:
        """Create a run, or return the existing one with the same key."""

    async def transition(self, change: Transition) -> TransitionResult:
        """Apply ``change`` atomically if the run is at ``change.expect``."""

    async def record_event(self, run_id: str, event: Event, status: str | None) -> RunState | None:
        """Append an event (and a status) to a run; returns its state, None if unknown."""

    async def heartbeat(self, beat: Beat) -> str:
        """Record that a service started (or still works on) a step: STARTED, BEAT, STALE or
        NOT_FOUND."""

    async def claim_timers(
        self, now: float, lease: float, limit: int, shards: Collection[int] | None = None
    ) -> list[tuple[str, int]]:
        """Claim due timers (re-scored to ``now + lease``) of ``shards`` (None: every shard),
        at most ``limit`` per shard; returns (member, lease end ms)."""

    async def release_timer(self, member: str, lease_ms: int) -> None:
        """Remove a handled timer unless it was set again meanwhile."""

    async def move_timer(self, member: str, due: float) -> None:
        """Move a pending timer to ``due``; nothing when it is gone."""

    async def next_timer_due(self, shards: Collection[int] | None = None) -> float | None:
        """Due time (s) of the earliest timer of ``shards`` (None: every shard), or None."""

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""

    async def find_by_key(self, key: str) -> str | None:
        """The run id started with ``key``, or None."""

    async def get_events(self, run_id: str) -> list[Event]:
        """The run's history, oldest first."""

    async def list_runs(
        self, *, flow: str | None = None, state: RunState | None = None, limit: int = 50
    ) -> list[RunRecord]:
        """Most recent runs first, filtered by flow and/or state."""

    async def wait_finished(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run is terminal (raises TimeoutError)."""

    async def stranded(self, older_than: float, limit: int = 1000) -> list[RunRecord]:
        """Runs waiting since before ``older_than`` for a START (PENDING) or a RESUME
        (phase QUEUED) that nobody may have sent."""

    async def housekeeping(self, now: float) -> int:
        """Drop index entries of runs that expired; returns how many."""

    async def position(self, run_id: str) -> Position | None:
        """Where the run is now (state, step, attempt, phase), or None if it does not exist:
        one cheap read, made by a service worker before it starts a handler."""

    async def mark_once(self, run_id: str, token: str, ttl: float) -> bool:
        """Set the run's idempotency mark ``token`` unless it is already set (expiring after
        ``ttl`` seconds); True if this call set it. Backs ``HandlerContext.once``."""

    def replicas(self, namespace: str) -> Replicas:
        """The orchestrator replicas announced for an AMQP namespace."""

    async def count_recovery(self, run_id: str, scope: str) -> int:
        """Count one more re-sent START/RESUME of a stranded run at position ``scope``;
        returns the count so far (0 when the run does not exist)."""
