"""Event: the stored form of one entry of a run's history."""

import dataclasses
import json
from typing import Any

import orjson

from orch_serv.constants import EventKind, EventStatus
from orch_serv.messages import ErrorInfo
from orch_serv.store.base import Event


def _through_json(data: dict[str, Any]) -> dict[str, Any]:
    loaded = json.loads(json.dumps(data))
    assert isinstance(loaded, dict)
    return loaded


def test_full_event_roundtrip() -> None:
    event = Event(
        kind=EventKind.STEP_FAILED,
        time=1700000000.25,
        seq=7,
        step=2,
        step_name="transform",
        attempt=3,
        status=EventStatus.FAILED,
        component="images",
        duration_ms=12.5,
        body={"rows": [1, 2], "path": "/x"},
        error=ErrorInfo(type="Boom", message="broke", retryable=False, details={"code": 9}),
        message_id="r:2:3",
        name="validated",
        reason="timeout",
        message="free text",
    )
    data = _through_json(event.to_json_dict())
    assert data["kind"] == "step_failed"
    assert data["status"] == "FAILED"
    assert data["error"] == {
        "type": "Boom",
        "message": "broke",
        "retryable": False,
        "details": {"code": 9},
    }
    assert "seq" not in data
    back = Event.from_json_dict(7, data)
    assert back == event
    assert Event.from_json_dict(8, data).seq == 8


def test_minimal_event_omits_unset_fields() -> None:
    event = Event(kind=EventKind.RUN_CREATED, time=5.0)
    data = event.to_json_dict()
    assert data == {"kind": "run_created", "time": 5.0}
    back = Event.from_json_dict(1, _through_json(data))
    assert back == Event(kind=EventKind.RUN_CREATED, time=5.0, seq=1)
    assert back.status is EventStatus.OK
    assert back.error is None
    assert back.body is None


def test_error_without_details_roundtrip() -> None:
    event = Event(
        kind=EventKind.RUN_FAILED,
        time=1.0,
        status=EventStatus.FAILED,
        error=ErrorInfo(type="X", message="m"),
    )
    data = event.to_json_dict()
    assert data["error"] == {"type": "X", "message": "m", "retryable": True}
    assert Event.from_json_dict(0, _through_json(data)) == event


def test_falsy_values_are_kept() -> None:
    event = Event(kind=EventKind.STEP_COMPLETED, time=0.0, step=0, body=[], duration_ms=0.0)
    data = event.to_json_dict()
    assert data["step"] == 0
    assert data["body"] == []
    assert data["duration_ms"] == 0.0
    assert Event.from_json_dict(0, data) == event


def test_scalar_body_roundtrip() -> None:
    for body in ("text", 3, 2.5, True, {"nested": {"a": None}}):
        event = Event(kind=EventKind.STATUS, time=2.0, body=body, name="s")
        assert Event.from_json_dict(0, _through_json(event.to_json_dict())).body == body


def test_storage_form_is_compact_and_round_trips() -> None:
    event = Event(
        kind=EventKind.STEP_COMPLETED,
        time=1.25,
        step=1,
        step_name="transform",
        attempt=2,
        component="transformer",
        duration_ms=3.5,
    )
    stored = event.to_storage()
    assert "kind" not in stored and stored["k"] == "sc"
    assert len(orjson.dumps(stored)) < len(orjson.dumps(event.to_json_dict()))
    assert Event.from_storage(4, stored) == dataclasses.replace(event, seq=4)
