"""The codec: envelope <-> JSON bytes, protocol header, size limit and decode errors."""

import json
from typing import Any

import pytest
from pydantic import BaseModel

from orch_serv.constants import HEADER_KIND, HEADER_PROTOCOL, PROTOCOL_VERSION, MessageKind
from orch_serv.exceptions import DecodeError, MessageTooLarge, MsgException, OrchServError
from orch_serv.messages import Envelope, ErrorInfo, StatusInfo, decode, encode, headers_for


class Payload(BaseModel):
    path: str
    rows: int


def _command(**extra: Any) -> Envelope[Any]:
    return Envelope[Any](
        kind=MessageKind.COMMAND,
        message_id="run-1:1:2",
        run_id="run-1",
        flow="ingest",
        flow_version="abc123",
        step=1,
        step_name="transform",
        attempt=2,
        service="images",
        command="resize",
        reply_to="orch.replies",
        created_at=123.5,
        **extra,
    )


def test_roundtrip_preserves_every_field() -> None:
    env = _command(body={"a": [1, 2, {"b": None}]}, deadline=999.0, traceparent="00-x-y-01")
    back = decode(encode(env))
    assert back == env
    assert back.model_dump() == env.model_dump()


def test_roundtrip_of_model_body_gives_plain_json() -> None:
    env = Envelope[Payload](
        kind="command", message_id="m", run_id="r", body=Payload(path="/x", rows=3)
    )
    back = decode(encode(env))
    assert back.body == {"path": "/x", "rows": 3}
    assert Payload.model_validate(back.body) == env.body


def test_roundtrip_reply_with_error() -> None:
    env = _command(
        error=ErrorInfo(type="Boom", message="bad", retryable=False, details={"k": 1}),
        duration_ms=1.5,
    ).model_copy(update={"kind": MessageKind.REPLY})
    back = decode(encode(env))
    assert back.kind is MessageKind.REPLY
    assert back.error == env.error
    assert back.error is not None and back.error.retryable is False
    assert not back.ok
    assert back.duration_ms == 1.5


def test_encode_is_json_without_nulls() -> None:
    env = Envelope[Any](kind="start", message_id="m", run_id="r", created_at=1.0)
    data = json.loads(encode(env))
    assert data["kind"] == "start"
    assert data["run_id"] == "r"
    assert "body" not in data
    assert "error" not in data
    assert "flow" not in data


def test_status_envelope_without_body_roundtrips() -> None:
    env = Envelope[Any](
        kind="status",
        message_id="r:status:1",
        run_id="r",
        status=StatusInfo(name="validated", lineage={"files_incoming": ["a.csv"]}),
    )
    back = decode(encode(env))
    assert back.body is None
    assert back.kind is MessageKind.STATUS
    assert back.status == env.status


def test_headers_for_contains_protocol_version_and_kind() -> None:
    headers = headers_for(_command())
    assert headers[HEADER_PROTOCOL] == PROTOCOL_VERSION
    assert headers[HEADER_KIND] == "command"


def test_decode_accepts_matching_or_absent_protocol_header() -> None:
    env = _command(body=1)
    data = encode(env)
    assert decode(data, headers_for(env)) == env
    assert decode(data, {}) == env
    assert decode(data, {"other": "x"}) == env


@pytest.mark.parametrize("version", [2, 0, 99])
def test_decode_rejects_unsupported_protocol_version(version: object) -> None:
    with pytest.raises(DecodeError) as info:
        decode(encode(_command()), {HEADER_PROTOCOL: version})
    assert "unsupported protocol version" in info.value.message


@pytest.mark.parametrize("data", [b"{", b"not json", b"", b'{"kind": "start",'])
def test_decode_malformed_json(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.message.startswith("malformed JSON")
    assert str(info.value) == info.value.message


def test_decode_missing_run_id() -> None:
    data = json.dumps({"kind": "start", "message_id": "m"}).encode()
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert "run_id" in info.value.message
    assert info.value.message.startswith("invalid envelope")


def test_decode_non_object_json() -> None:
    with pytest.raises(DecodeError) as info:
        decode(b"[1, 2]")
    assert info.value.message.startswith("invalid envelope")


def test_decode_bad_kind() -> None:
    data = json.dumps({"kind": "explode", "message_id": "m", "run_id": "r"}).encode()
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert "kind" in info.value.message


def test_decode_ignores_unknown_fields() -> None:
    data = json.dumps(
        {"kind": "start", "message_id": "m", "run_id": "r", "future_field": 1}
    ).encode()
    env = decode(data)
    assert env.run_id == "r"
    assert not hasattr(env, "future_field")


def test_decode_too_large() -> None:
    data = encode(_command(body="x" * 500))
    with pytest.raises(MessageTooLarge) as info:
        decode(data, max_bytes=100)
    assert str(len(data)) in info.value.message
    assert "100" in info.value.message


def test_decode_size_limit_boundary_and_zero_means_unlimited() -> None:
    data = encode(_command(body="x" * 500))
    assert decode(data, max_bytes=len(data)).body == "x" * 500
    assert decode(data, max_bytes=0).body == "x" * 500


def test_decode_errors_are_msg_exceptions() -> None:
    assert issubclass(DecodeError, MsgException)
    assert issubclass(MessageTooLarge, MsgException)
    assert issubclass(MsgException, OrchServError)
