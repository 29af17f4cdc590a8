"""The request and response models of the native API (what ``/openapi.json`` documents).

The run and event documents are the CLI's (:func:`orch_serv.render.run_json` and
:func:`~orch_serv.render.event_json`): the endpoints answer those dicts as they are, and
these models describe them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from orch_serv.constants import EventKind, EventStatus, Phase, RunState
from orch_serv.flow.spec import FlowSpec
from orch_serv.messages.limits import check_json_numbers

#: Largest page of runs, events or dead letters one request returns.
MAX_PAGE = 500
#: Deepest nesting of arrays and objects a start body may have (the envelope that carries
#: it, and the replies that carry what handlers make of it, must still serialise).
MAX_BODY_DEPTH = 128


def sendable(body: Any) -> Any:
    """``body`` if a message can carry it: integers signed 64-bit, floats finite, nested at
    most ``MAX_BODY_DEPTH`` deep; ``ValueError`` (a 422) otherwise."""
    check_json_numbers(body)
    stack = [(body, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_BODY_DEPTH:
                raise ValueError(f"the body is nested more than {MAX_BODY_DEPTH} levels deep")
            values = item.values() if isinstance(item, dict) else item
            stack.extend((v, depth + 1) for v in values)
    return body


class Strict(BaseModel):
    """A request body: unknown members are refused (a typo is a 422, not silently ignored),
    and no value is coerced (`"yes"` is not a boolean)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class StartRequest(Strict):
    """Start a run of a flow, or of a single block."""

    flow: str | None = Field(
        None, min_length=1, description="Flow to run; neither flow nor block: the default flow."
    )
    block: str | None = Field(None, min_length=1, description="Run this single block instead.")
    body: Annotated[Any, AfterValidator(sendable)] = Field(
        None, description=f"JSON body of the first step (at most {MAX_BODY_DEPTH} levels deep)."
    )
    key: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="Idempotency key: a second start with it returns the first run (200).",
    )
    deadline: float | None = Field(
        None, gt=0, le=10 * 365 * 24 * 3600, description="Run deadline in seconds."
    )

    @model_validator(mode="after")
    def _one_target(self) -> StartRequest:
        if self.flow is not None and self.block is not None:
            raise ValueError("give flow or block, not both")
        return self


class CancelRequest(Strict):
    """How to cancel a run."""

    compensate: bool = Field(False, description="Run the completed steps' compensations first.")
    reason: str = Field("", max_length=1024, description="Recorded in the run's history.")


class SignalRequest(Strict):
    """A signal to a run (every member optional: an empty body, or none, is a bare signal)."""

    data: Annotated[Any, AfterValidator(sendable)] = Field(
        None,
        description="JSON data of the signal: the output of the wait step it ends (null: "
        "the step hands its input on).",
    )


class Waiting(BaseModel):
    """What an active run's current step waits for: its queue as the broker sees it, or (role
    ``wait``) the condition of a wait step."""

    queue: str
    role: Literal["orchestrator", "service", "wait"]
    service: str | None = None
    exists: bool
    messages: int | None = None
    consumers: int | None = None
    hint: str | None = None
    condition: str | None = Field(
        None, description="At a wait step: what the run waits for (a signal, a chart state)."
    )


class GroupMember(BaseModel):
    """One member (child run) of a group step."""

    index: int
    label: str = Field(description="The branch's name, or the element's index in a map.")
    run_id: str
    state: str = Field(description="A run state, RUNNING, or WAITING (not started yet).")


class GroupMembers(BaseModel):
    """A group step's members: counts by state and the first members' run ids."""

    step: int
    step_name: str
    attempt: int
    kind: Literal["parallel", "map"]
    join: str
    total: int
    counts: dict[str, int]
    members: list[GroupMember]


class RunError(BaseModel):
    """How a run failed."""

    type: str
    message: str
    retryable: bool = True
    details: dict[str, Any] | None = None


class RunStatus(BaseModel):
    """A run, as ``orch-serv status --format json`` prints it (``step`` is 0-based)."""

    done: bool
    id: str
    state: RunState
    status: Literal["OK", "FAILED"] = Field(description="Oslo's event status of the state.")
    trace_status: Literal["STARTED", "CONTINUE", "FINISHED"]
    phase: Phase | None = None
    kind: str
    flow: str
    version: str
    step: int
    step_name: str | None = None
    attempt: int
    steps_total: int
    key: str | None = None
    created_at: str | None = Field(None, description="ISO 8601, UTC.")
    updated_at: str | None = None
    finished_at: str | None = None
    statuses: list[str]
    result: Any = None
    error: RunError | None = None
    waiting: Waiting | None = Field(
        None, description="Only while the step waits in a queue (QUEUED or DISPATCHED)."
    )
    groups: list[GroupMembers] | None = Field(
        None, description="At a group step (parallel, map): its members (docs/groups.md)."
    )


class RunList(BaseModel):
    """A page of runs; ``next_cursor`` fetches the next one (null: this was the last)."""

    runs: list[RunStatus]
    next_cursor: str | None = None


class EventDoc(BaseModel):
    """One entry of a run's history (``seq`` from 1; ``step`` 0-based)."""

    seq: int
    kind: EventKind
    time: str | None = None
    status: EventStatus
    step: int | None = None
    step_name: str | None = None
    attempt: int | None = None
    component: str | None = None
    duration_ms: float | None = None
    body: Any = None
    message_id: str | None = None
    name: str | None = None
    reason: str | None = None
    message: str | None = None
    error: RunError | None = None


class EventList(BaseModel):
    """Events after a cursor. ``next_after`` is the cursor of the next request."""

    run_id: str
    events: list[EventDoc]
    next_after: int = Field(description="The seq of the last event returned (or the cursor).")
    done: bool = Field(description="The run is finished (events may still be appended).")


class FlowList(BaseModel):
    """Every current flow and block definition."""

    flows: list[FlowSpec]


class FlowVersions(BaseModel):
    """The versions of a flow (or block) that are registered."""

    kind: Literal["flow", "block"]
    name: str
    current: str = Field(description="The version new runs start with.")
    versions: list[FlowSpec]


class DeadLetterDoc(BaseModel):
    """A message in the dead-letter queue (headers and body only when shown alone)."""

    id: str
    reason: str
    queue: str
    routing_key: str
    kind: str | None = None
    size: int
    headers: dict[str, str] | None = None
    body: str | None = None


class DeadLetterList(BaseModel):
    """Dead letters, oldest first."""

    dead_letters: list[DeadLetterDoc]


class Selection(Strict):
    """Which dead letters: the given ids, or all of them."""

    ids: list[str] | None = Field(None, min_length=1, max_length=10000)
    all: bool = Field(False, description="Every dead letter (then give no ids).")

    @model_validator(mode="after")
    def _ids_or_all(self) -> Selection:
        if bool(self.ids) == self.all:
            raise ValueError("give dead-letter ids, or all: true (not both)")
        return self

    @property
    def wanted(self) -> list[str] | None:
        """The ids without repeats, or None for all."""
        return None if self.all else list(dict.fromkeys(self.ids or []))


class ReplayFailureDoc(BaseModel):
    """A dead letter that could not be replayed (it stays in the queue)."""

    id: str
    reason: str


class ReplayResult(BaseModel):
    """What a replay did, letter by letter."""

    ok: bool
    replayed: list[str]
    failed: list[ReplayFailureDoc]
    missing: list[str]


class PurgeResult(BaseModel):
    """How many dead letters were dropped."""

    purged: int


class Problem(BaseModel):
    """An error (RFC 9457). Members besides these five depend on the error: ``errors``
    (422), ``backend`` (503), ``key``/``run_id``/``flow`` (409 idempotency conflict),
    ``known`` (404 unknown flow)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


__all__ = [
    "MAX_PAGE",
    "CancelRequest",
    "DeadLetterDoc",
    "DeadLetterList",
    "EventDoc",
    "EventList",
    "FlowList",
    "FlowVersions",
    "Problem",
    "PurgeResult",
    "ReplayFailureDoc",
    "ReplayResult",
    "RunError",
    "RunList",
    "RunStatus",
    "Selection",
    "StartRequest",
    "Waiting",
]
