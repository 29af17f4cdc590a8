"""What a client posts to the Oslo surface: the body of ``POST /status`` (create a trace)
and ``POST /status/{trace_id}`` (append an event), with the 2020 field names remapped, and
the documents the surface answers (for the OpenAPI description).

Field names are those of seed-behaviours 4.2; the legacy names (``id``, ``application``,
``application_id``, ``date_started``, ``date_end``, ``handler``, ``run_status``,
``status``, ``s3path``, ``body``) are renamed first, in body order, so that when both the
old and the new name are given the later one wins, as in the seed. Unknown keys are dropped.
Unlike the seed, every field is type-checked and the required ones are required (400 with a
message instead of a crash), and ``trace_status`` / ``trace_event_status`` must be one of
the values the okdata client defines.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
import structlog
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, ValidationError

from orch_serv.api.oslo_errors import OsloError
from orch_serv.messages.limits import check_json_numbers

log = structlog.get_logger("orch_serv.api.oslo")
M = TypeVar("M", bound=BaseModel)

#: Legacy name -> current name (seed-behaviours 4.2). ``event_id`` is not remapped (it
#: never was): the surface generates every ``trace_event_id``.
LEGACY_NAMES = {
    "id": "trace_id",
    "application": "domain",
    "application_id": "domain_id",
    "date_started": "start_time",
    "date_end": "end_time",
    "handler": "component",
    "run_status": "trace_status",
    "status": "trace_event_status",
    "s3path": "s3_path",
    "body": "status_body",
}

TraceStatus = Literal["STARTED", "CONTINUE", "FINISHED"]
TraceEventStatus = Literal["OK", "FAILED"]
#: The numbers a stored value may hold (the store keeps JSON with 64-bit integers).
NUMBERS = " Numbers in it: integers within the signed 64-bit range, finite floats."
#: A JSON number (an integer stays an integer: 618 is answered as 618).
Number = Annotated[int | float, AfterValidator(check_json_numbers)]
#: A JSON object, its numbers within the store's limits.
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_numbers)]
JsonList = Annotated[list[dict[str, Any]], AfterValidator(check_json_numbers)]


class _Optional(BaseModel):
    """The optional fields of both bodies (absent or null: not stored)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    user: StrictStr | None = Field(None, description="Who the component acted as.")
    operation: StrictStr | None = Field(None, description="What was done, e.g. a handler name.")
    status_body: JsonObject | None = Field(
        None,
        description="Data lineage, e.g. {'files_incoming': [...], 'files_outgoing': [...]}; "
        "string entries of these two lists are indexed for status-from-path." + NUMBERS,
    )
    meta: JsonObject | None = Field(
        None, description="Free-form metadata (git_rev, ...)." + NUMBERS
    )
    s3_path: StrictStr | None = Field(None, description="A file path; indexed.")
    duration: Number | None = Field(
        None, description="Milliseconds: an integer within the signed 64-bit range or a float."
    )
    exception: StrictStr | None = Field(None, description="A traceback or error text.")
    errors: JsonList | None = Field(
        None, description="[{'message': {'nb': ..., 'en': ...}}, ...]." + NUMBERS
    )


class TraceCreate(_Optional):
    """``POST /status``: a new trace. Its ``trace_status`` is STARTED and its
    ``trace_event_status`` OK whatever the body says; a ``trace_id`` in it is ignored."""

    domain: StrictStr = Field(description="e.g. 'dataset' (legacy: application).")
    domain_id: StrictStr = Field(
        description="e.g. 'my-dataset/1': its part before the first '/' starts the trace id "
        "(legacy: application_id)."
    )
    start_time: StrictStr = Field(description="ISO time (legacy: date_started).")
    end_time: StrictStr = Field(description="ISO time (legacy: date_end).")
    component: StrictStr = Field(description="Who records the event (legacy: handler).")


class TraceEventIn(_Optional):
    """``POST /status/{trace_id}``: one more event of the trace (FINISHED ends it)."""

    domain: StrictStr = Field(description="e.g. 'dataset' (legacy: application).")
    domain_id: StrictStr | None = Field(None, description="(legacy: application_id)")
    start_time: StrictStr = Field(description="ISO time (legacy: date_started).")
    end_time: StrictStr = Field(description="ISO time (legacy: date_end).")
    trace_status: TraceStatus = Field(description="STARTED, CONTINUE or FINISHED (run_status).")
    trace_event_status: TraceEventStatus = Field(description="OK or FAILED (legacy: status).")
    component: StrictStr = Field(description="Who records the event (legacy: handler).")


#: The order of an item's fields (the order the seed's table lists them in).
ITEM_FIELDS = (
    "trace_id",
    "trace_event_id",
    "domain",
    "domain_id",
    "start_time",
    "end_time",
    "trace_status",
    "trace_event_status",
    "user",
    "component",
    "operation",
    "status_body",
    "meta",
    "s3_path",
    "duration",
    "exception",
    "errors",
)


def remap(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the legacy names renamed (in body order: the later of two wins); the
    legacy names found are logged (``remapped_legacy_fields``)."""
    renamed: dict[str, Any] = {}
    legacy: list[str] = []
    for key, value in body.items():
        name = LEGACY_NAMES.get(key, key)
        if name != key:
            legacy.append(key)
        renamed.pop(name, None)  # keep the order of the last occurrence
        renamed[name] = value
    if legacy:
        log.info("remapped_legacy_fields", fields=legacy)
    return renamed


def parse_json(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object, or :class:`OsloError` 400."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OsloError(400, f"Invalid JSON in the request body: {exc}") from None
    if not isinstance(value, dict):
        raise OsloError(400, "The request body must be a JSON object")
    return value


def validated(model: type[M], body: dict[str, Any]) -> M:
    """``body`` (legacy names remapped) as ``model``, or :class:`OsloError` 400 naming
    every field that is missing or wrong."""
    try:
        return model.model_validate(remap(body))
    except ValidationError as exc:
        parts = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"]) or "body"
            parts.append(f"{where}: {error['msg']}")
        raise OsloError(400, "Invalid request: " + "; ".join(parts)) from None


class Message(BaseModel):
    """Every error: ``{"message": "..."}``."""

    message: str


class TraceCreated(BaseModel):
    """The answer to ``POST /status``."""

    trace_id: str


class PathMatch(BaseModel):
    """The answer to ``GET /status-from-path/...``: the id under both names."""

    id: str
    trace_id: str


class TraceItem(BaseModel):
    """One event of a trace (``GET /status/{trace_id}`` answers a list of them)."""

    model_config = ConfigDict(extra="allow")

    trace_id: str
    trace_event_id: str
    domain: str | None = None
    domain_id: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    trace_status: str | None = None
    trace_event_status: str | None = None
    user: str | None = None
    component: str | None = None
    operation: str | None = None
    status_body: Any = None
    meta: dict[str, Any] | None = None
    s3_path: str | None = None
    duration: float | None = None
    exception: str | None = None
    errors: list[Any] | None = None


class Summary(BaseModel):
    """``GET /status/{trace_id}/summary``: the okdata CLI's status row, computed here (the
    current form and the legacy one in one document)."""

    done: bool
    trace_id: str
    trace_status: str
    trace_event_status: str
    errors: list[str]
    id: str
    run_status: str
    status: str
    state: str


__all__ = [
    "ITEM_FIELDS",
    "LEGACY_NAMES",
    "Message",
    "PathMatch",
    "Summary",
    "TraceCreate",
    "TraceCreated",
    "TraceEventIn",
    "TraceItem",
    "parse_json",
    "remap",
    "validated",
]
