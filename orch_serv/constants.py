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


class MessageKind(StrEnum):
    """What an envelope is for."""

    START = "start"  #: client -> orchestrator: begin a run that was created in the store
    COMMAND = "command"  #: orchestrator -> service: execute one step
    REPLY = "reply"  #: service -> orchestrator: the step's result or error
    STATUS = "status"  #: service -> orchestrator: a status event with a lineage body


class RunState(StrEnum):
    """Lifecycle of a run. Terminal states never change again."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        """True for a state a run never leaves."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED})


class EventStatus(StrEnum):
    """Outcome of one event, as Oslo's ``trace_event_status``."""

    OK = "OK"
    FAILED = "FAILED"


class EventKind(StrEnum):
    """Kinds of entries in a run's append-only history."""

    RUN_CREATED = "run_created"
    RUN_STARTED = "run_started"
    STEP_DISPATCHED = "step_dispatched"
    STEP_COMPLETED = "step_completed"
    STEP_FAILED = "step_failed"
    STATUS = "status"
    REPLY_IGNORED = "reply_ignored"
    RUN_STOPPED = "run_stopped"
    RUN_SUCCEEDED = "run_succeeded"
    RUN_FAILED = "run_failed"
