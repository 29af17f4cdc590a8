"""The envelope: typed bodies, 0.2 hooks, ids and the JSON schema."""

from typing import Any, cast

import pytest
from pydantic import BaseModel, ValidationError

from orch_serv.constants import MessageKind
from orch_serv.messages import (
    BaseOrchServMsg,
    Envelope,
    ErrorInfo,
    StatusInfo,
    command_message_id,
)


class MyBody(BaseModel):
    name: str
    size: int = 0


class MyEnvelope(Envelope):  # type: ignore[type-arg]
    body: MyBody


BASE = {"kind": "command", "message_id": "r:0:1", "run_id": "r", "created_at": 1.0}


def test_generic_envelope_validates_body_from_dict() -> None:
    env = Envelope[MyBody](**BASE, body={"name": "a", "size": 3})
    assert isinstance(env.body, MyBody)
    assert env.body == MyBody(name="a", size=3)
    assert env.kind is MessageKind.COMMAND


def test_generic_envelope_rejects_invalid_body() -> None:
    with pytest.raises(ValidationError) as info:
        Envelope[MyBody](**BASE, body={"size": "not a number"})
    locs = {err["loc"] for err in info.value.errors()}
    assert ("body", "name") in locs
    assert ("body", "size") in locs


def test_subclass_redeclaring_body_validates_body() -> None:
    env = MyEnvelope(**BASE, body={"name": "b"})
    assert isinstance(env.body, MyBody)
    assert env.body.name == "b"
    assert env.body.size == 0


@pytest.mark.parametrize("cls", [Envelope[MyBody], MyEnvelope], ids=["generic", "subclass"])
def test_dict_and_model_input_are_equivalent(cls: type[Envelope[Any]]) -> None:
    from_dict = cls(**BASE, body={"name": "x", "size": 2})
    from_model = cls(**BASE, body=MyBody(name="x", size=2))
    assert from_dict == from_model
    assert from_dict.model_dump() == from_model.model_dump()
    assert from_dict.model_dump()["body"] == {"name": "x", "size": 2}


def test_model_dump_round_trips() -> None:
    env = MyEnvelope(**BASE, body={"name": "x"}, flow="f", step=2, attempt=3)
    assert MyEnvelope.model_validate(env.model_dump()) == env
    assert MyEnvelope.model_validate_json(env.model_dump_json()) == env


def test_subclass_missing_body_raises() -> None:
    with pytest.raises(ValidationError) as info:
        MyEnvelope(**BASE)
    assert [err["loc"] for err in info.value.errors()] == [("body",)]


def test_generic_missing_body_raises() -> None:
    with pytest.raises(ValidationError):
        Envelope[MyBody](**BASE)


def test_untyped_envelope_body_defaults_to_none() -> None:
    env = Envelope[Any](kind="status", message_id="m", run_id="r")
    assert env.body is None
    assert env.ok


@pytest.mark.parametrize("missing", ["kind", "message_id", "run_id"])
def test_required_fields(missing: str) -> None:
    data = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ValidationError) as info:
        Envelope(**data)
    assert (missing,) in [err["loc"] for err in info.value.errors()]


def test_step_and_attempt_bounds() -> None:
    with pytest.raises(ValidationError):
        Envelope(**BASE, step=-1)
    with pytest.raises(ValidationError):
        Envelope(**BASE, attempt=0)


def test_unknown_kind_rejected() -> None:
    with pytest.raises(ValidationError):
        Envelope(**{**BASE, "kind": "bogus"})


def test_hooks() -> None:
    env = MyEnvelope(**BASE, body={"name": "x"}, flow="ingest", target="resize", command="validate")
    assert env.get_source() is None
    env.set_source("first")
    assert env.get_source() == "first"
    assert env.source == "first"
    env.set_source("second")
    assert env.get_source() == "second"
    assert env.get_flow() == "ingest"
    assert env.get_target() == "resize"
    assert env.get_command() == "validate"


def test_hooks_default_to_none() -> None:
    env = Envelope[Any](**BASE)
    assert env.get_flow() is None
    assert env.get_target() is None
    assert env.get_command() is None


def test_ok_is_false_with_error() -> None:
    env = Envelope[Any](**BASE, error={"type": "Boom", "message": "it broke"})
    assert not env.ok
    assert env.error == ErrorInfo(type="Boom", message="it broke")
    assert env.error.retryable is True


def test_status_info_defaults() -> None:
    env = Envelope[Any](**{**BASE, "kind": "status"}, status={"name": "validated"})
    assert env.status == StatusInfo(name="validated")
    assert env.status.status.value == "OK"


def test_base_orch_serv_msg_is_the_02_message() -> None:
    # the user's 0.2 message, not the wire envelope (docs/architecture.md, 0.2 names)
    from orch_serv.msg import BaseOrchServMsg as Msg02

    assert BaseOrchServMsg is Msg02
    assert BaseOrchServMsg is not cast(type, Envelope)


def test_command_message_id() -> None:
    assert command_message_id("r", 2, 3) == "r:2:3"
    assert command_message_id("run-1", 0, 1) == "run-1:0:1"


def test_json_schema() -> None:
    schema = Envelope.model_json_schema()
    props = schema["properties"]
    for field in ("kind", "message_id", "run_id", "body", "error"):
        assert field in props
    assert set(schema["required"]) == {"kind", "message_id", "run_id"}


def test_typed_json_schema_references_body_model() -> None:
    schema = MyEnvelope.model_json_schema()
    assert "MyBody" in schema["$defs"]
    assert "body" in schema["required"]
