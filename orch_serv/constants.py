"""Names and enumerations shared by every part of orch_serv (the wire and the store)."""

from __future__ import annotations

from enum import StrEnum

#: Version of the wire protocol, carried in the ``x-orch-serv-protocol`` AMQP header.
PROTOCOL_VERSION = 1
#: The only content type orch_serv speaks.
CONTENT_TYPE = "application/json"

HEADER_PROTOCOL = "x-orch-serv-protocol"
HEADER_KIND = "x-orch-serv-kind"
HEADER_REASON = "x-orch-serv-reason"
HEADER_ORIGIN_QUEUE = "x-orch-serv-origin-queue"
HEADER_ORIGIN_ROUTING_KEY = "x-orch-serv-origin-routing-key"
HEADER_DEAD_ID = "x-orch-serv-dead-id"
#: On a batch message: how many envelopes its JSON array holds.
HEADER_BATCH = "x-orch-serv-batch"
#: On a single envelope re-published out of a batch: it was delivered before.
HEADER_REDELIVERED = "x-orch-serv-redelivered"


class MessageKind(StrEnum):
    """What an envelope is for."""

    START = "start"  #: client -> orchestrator: begin a run that was created in the store
    RESUME = "resume"  #: client -> orchestrator: dispatch the queued step (retry, compensate)
    COMMAND = "command"  #: orchestrator -> service: execute one step
    REPLY = "reply"  #: service -> orchestrator: the step's result or error
    STATUS = "status"  #: service -> orchestrator: a status event with a lineage body
    HEARTBEAT = "heartbeat"  #: service -> orchestrator: picked up / still working (progress)
    CANCEL = "cancel"  #: orchestrator/client -> services (control exchange): stop this work


class RunState(StrEnum):
    """Lifecycle of a run. Terminal states never change again."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    CANCELLED = "CANCELLED"
    COMPENSATED = "COMPENSATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"

    @property
    def terminal(self) -> bool:
        """True for a state a run never leaves."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.TIMED_OUT,
        RunState.CANCELLED,
        RunState.COMPENSATED,
        RunState.COMPENSATION_FAILED,
    }
)
ACTIVE_STATES = frozenset({RunState.PENDING, RunState.RUNNING, RunState.COMPENSATING})


class Phase(StrEnum):
    """Where the current step of an active run is."""

    QUEUED = "QUEUED"  #: waiting for an orchestrator to dispatch it (start, resume)
    DISPATCHED = "DISPATCHED"  #: command sent, no service has reported picking it up
    STARTED = "STARTED"  #: a service reported it is working on it
    BACKOFF = "BACKOFF"  #: waiting in the timer set before the next attempt
    DONE = "DONE"  #: the run is finished


class Lane(StrEnum):
    """Whether a command does a step's work or undoes it."""

    RUN = "run"
    COMPENSATE = "compensate"


class TimerKind(StrEnum):
    """The clocks kept in the timer set."""

    DISPATCH = "dispatch"
    HEARTBEAT = "heartbeat"
    EXECUTION = "execution"
    TOTAL = "total"
    RETRY = "retry"
    DEADLINE = "deadline"
    #: A chart machine's time state (orch_serv.store.charts; its step is the state's index).
    CHART = "chart"
    #: A wait step's next check of its condition (orch_serv.orchestrator.waits).
    WAIT = "wait"
    #: A group step's next check of its members (orch_serv.orchestrator.groups).
    GROUP = "group"
    #: A direct start's guard: its first command was committed by a client that may have
    #: died before publishing it (orch_serv.orchestrator.direct_start).
    START = "start"


class EventStatus(StrEnum):
    """Outcome of one event, as Oslo's ``trace_event_status``."""

    OK = "OK"
    FAILED = "FAILED"


class EventKind(StrEnum):
    """Kinds of entries in a run's append-only history."""

    RUN_CREATED = "run_created"
    RUN_STARTED = "run_started"
    RUN_RESUMED = "run_resumed"
    STEP_DISPATCHED = "step_dispatched"
    STEP_STARTED = "step_started"
    HEARTBEAT = "heartbeat"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STEP_TIMED_OUT = "step_timed_out"
    RETRY_SCHEDULED = "retry_scheduled"
    STATUS = "status"
    #: A status its run's status model refused (the reason is the rule that refused it).
    STATUS_REFUSED = "status_refused"
    #: A duplicate of a reply that was already applied.
    REPLY_IGNORED = "reply_ignored"
    #: A reply for an attempt, step or run that has moved on (timed out, retried, finished).
    LATE_RESULT = "late_result"
    RUN_STOPPED = "run_stopped"
    #: A signal sent to the run (a wait step of the run may be waiting for it).
    SIGNAL_RECEIVED = "signal_received"
    #: A group step started members (child runs; the body says which).
    MEMBERS_STARTED = "members_started"
    #: A group step's join decided (the body counts its members by state).
    GROUP_JOINED = "group_joined"
    COMPENSATION_DISPATCHED = "compensation_dispatched"
    COMPENSATION_COMPLETED = "compensation_completed"
    COMPENSATION_FAILED = "compensation_failed"
    RUN_SUCCEEDED = "run_succeeded"
    RUN_FAILED = "run_failed"
    RUN_TIMED_OUT = "run_timed_out"
    RUN_CANCELLED = "run_cancelled"
    RUN_COMPENSATED = "run_compensated"
    RUN_COMPENSATION_FAILED = "run_compensation_failed"


def lane_state(lane: Lane) -> RunState:
    """The run state in which commands of ``lane`` are in flight (``RUNNING`` for ``run``,
    ``COMPENSATING`` for ``compensate``)."""
    return RunState.COMPENSATING if lane is Lane.COMPENSATE else RunState.RUNNING
