"""The one envelope every orch_serv message travels in (the wire protocol, version 1).

The user's payload is ``body``: a pydantic model of their own, chosen either as a generic
parameter (``Envelope[MyBody]``) or by a subclass that re-declares ``body: MyBody``. The
message hooks (``get_source``, ``set_source``, ``get_flow``, ``get_target``,
``get_command``) work on it out of the box. orch_serv 0.2's ``BaseOrchServMsg`` is the
user's message, a different class (:mod:`orch_serv.msg`); it travels as an envelope's body.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any, Generic, TypeVar, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from orch_serv.constants import EventStatus, Lane, MessageKind
from orch_serv.messages import ids
from orch_serv.messages.limits import (
    AttemptNumber,
    DurationMs,
    JsonValue,
    StepIndex,
    Timestamp,
    check_details,
    check_json_numbers,
)

BodyT = TypeVar("BodyT")


class ErrorInfo(BaseModel):
    """A structured error: what failed, why, and whether trying again could help."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(description="Error class or code, e.g. 'ValidationError'.")
    message: str = Field(description="Human-readable explanation.")
    retryable: bool = Field(True, description="False when retrying cannot succeed.")
    details: Annotated[dict[str, Any] | None, AfterValidator(check_details)] = Field(
        None,
        description="Extra machine-readable data (JSON numbers in range; 'retry_after' is "
        "the delay in seconds a handler asked for).",
    )

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> ErrorInfo:
        """Rebuild an error read back from the store: validated, but an error stored before
        the envelope's numeric limits were checked is kept as it was rather than refused
        (reading a run's history must never fail on old data)."""
        try:
            return cls.model_validate(data)
        except ValidationError:
            return cls.model_construct(
                type=str(data.get("type", "")),
                message=str(data.get("message", "")),
                retryable=bool(data.get("retryable", True)),
                details=data.get("details") if isinstance(data.get("details"), dict) else None,
            )


class StatusInfo(BaseModel):
    """A status event a handler records on its run, with an optional lineage body."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Status name, e.g. 'validated'.")
    status: EventStatus = Field(EventStatus.OK, description="OK or FAILED.")
    lineage: Annotated[dict[str, Any] | None, AfterValidator(check_json_numbers)] = Field(
        None, description="Data lineage, e.g. {'files_incoming': [...], 'files_outgoing': [...]}."
    )
    message: str | None = Field(None, description="Free text for operators.")


class Envelope(BaseModel, Generic[BodyT]):
    """The standard orch_serv message. Every field but ``kind``, ``message_id`` and ``run_id``
    is optional on the wire so that a service in any language can take part."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False)

    kind: MessageKind = Field(
        description="start, resume, command, reply, status, heartbeat or cancel."
    )
    message_id: str = Field(
        description="Unique id; for commands '{run_id}:{step}:{attempt}', usable for idempotency."
    )
    run_id: str = Field(description="The run this message belongs to (its trace id / token).")
    flow: str | None = Field(None, description="Flow name.")
    flow_version: str | None = Field(None, description="Flow version the run is pinned to.")
    step: StepIndex = Field(0, description="0-based index of the step in the flow.")
    step_name: str | None = Field(None, description="Name of the step's block.")
    attempt: AttemptNumber = Field(1, description="1-based attempt of the step.")
    lane: Lane = Field(Lane.RUN, description="'run', or 'compensate' for an undo command.")
    service: str | None = Field(None, description="Service that executes the command.")
    command: str | None = Field(None, description="Command the service must execute.")
    source: str | None = Field(None, description="Last block that processed the message.")
    target: str | None = Field(None, description="Single block to execute instead of a flow.")
    reply_to: str | None = Field(None, description="Routing key for the reply.")
    deadline: Timestamp | None = Field(None, description="Unix time after which the work is moot.")
    traceparent: str | None = Field(None, description="W3C trace context.")
    created_at: Timestamp = Field(default_factory=time.time, description="Unix time of creation.")
    # validate_default: a missing body is fine for Envelope[Any] (the wire form), but
    # Envelope[MyBody] rejects it, as orch_serv did.
    body: BodyT = Field(
        default=cast(Any, None),
        validate_default=True,
        description="The user's payload; may be absent (null) unless the body type is a model.",
    )
    error: ErrorInfo | None = Field(None, description="Set on a failed reply.")
    status: StatusInfo | None = Field(None, description="Set on a status event.")
    duration_ms: DurationMs | None = Field(None, description="Handler time, on replies.")
    notify_start: bool = Field(
        False, description="On commands: send a heartbeat when the work starts (timeouts)."
    )
    progress: JsonValue = Field(None, description="On heartbeats: the handler's progress report.")

    @field_validator("body", mode="after")
    @classmethod
    def _body_numbers(cls, body: Any) -> Any:
        """A JSON body must carry numbers the store can keep (a typed body's model is not
        looked into: its own fields say what it accepts)."""
        return check_json_numbers(body)

    # -- orch_serv 0.2 hooks --------------------------------------------------------------------
    def get_source(self) -> str | None:
        """The last block that processed this message."""
        return self.source

    def set_source(self, source: str) -> None:
        """Remember ``source`` as the last block that processed this message."""
        self.source = source

    def get_flow(self) -> str | None:
        """The flow this message runs in."""
        return self.flow

    def get_target(self) -> str | None:
        """The single block this message targets, if any."""
        return self.target

    def get_command(self) -> str | None:
        """The command a service must execute."""
        return self.command

    def answer(
        self, kind: MessageKind, message_id: str, *, service: str, **fields: Any
    ) -> Envelope[Any]:
        """A message about this command (reply, heartbeat, status event): it echoes the
        command's run, flow, step, attempt and lane, so the orchestrator can place it; its
        id comes from :mod:`orch_serv.messages.ids`."""
        return Envelope[Any](
            kind=kind,
            message_id=message_id,
            run_id=self.run_id,
            flow=self.flow,
            target=self.target,
            flow_version=self.flow_version,
            step=self.step,
            step_name=self.step_name,
            attempt=self.attempt,
            lane=self.lane,
            service=service,
            command=self.command,
            traceparent=self.traceparent,
            **fields,
        )

    @property
    def ok(self) -> bool:
        """True unless the message carries an error."""
        return self.error is None


def command_message_id(run_id: str, step: int, attempt: int, lane: Lane = Lane.RUN) -> str:
    """The deterministic id of the command for (run, step, attempt) (kept for callers of
    earlier versions: :func:`orch_serv.messages.ids.command_id`)."""
    return ids.command_id(run_id, step, attempt, lane)
