"""1.1: the 0.2 message, ``orch_serv.msg.BaseOrchServMsg``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from orch_serv.msg import BaseOrchServMsg
from tests.legacy02.models import Body, Header, Msg, msg


class Required(BaseOrchServMsg[Body, Header]):
    body: Body
    header: Header


def test_is_a_pydantic_model_generic_over_body_and_header() -> None:
    assert issubclass(BaseOrchServMsg, BaseModel)
    generic = BaseOrchServMsg[Body, Header](body=Body(value=1))
    assert generic.body == Body(value=1)
    assert generic.header is None


def test_generic_form_header_is_optional_body_required() -> None:
    assert BaseOrchServMsg[Body, Header](body={"value": 2}).header is None
    with pytest.raises(ValidationError):
        BaseOrchServMsg[Body, Header]()  # type: ignore[call-arg]


def test_subclass_redeclaring_header_makes_it_required() -> None:
    with pytest.raises(ValidationError):
        Required(body=Body())  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Required(header=Header())  # type: ignore[call-arg]
    assert Required(body=Body(), header=Header()).header == Header()


def test_dict_and_model_input_are_interchangeable() -> None:
    a = Required(body=Body(value=3), header={"flow": "f"})
    b = Required(body={"value": 3}, header=Header(flow="f"))
    assert a == b
    assert a.model_dump() == b.model_dump()
    assert Required(**a.model_dump()) == a


@pytest.mark.parametrize(
    ("hook", "args"),
    [
        ("get_source", ()),
        ("set_source", ("x",)),
        ("get_flow", ()),
        ("get_target", ()),
        ("get_command", ()),
    ],
)
def test_hooks_raise_not_implemented_by_default(hook: str, args: tuple[Any, ...]) -> None:
    plain = Required(body=Body(), header=Header())
    with pytest.raises(NotImplementedError):
        getattr(plain, hook)(*args)


def test_hooks_work_once_overridden() -> None:
    m = msg(flow="f", target="t", command="c")
    assert (m.get_flow(), m.get_target(), m.get_command(), m.get_source()) == ("f", "t", "c", None)
    m.set_source("block")
    assert m.get_source() == "block"


def test_the_0_2_paths_name_the_same_class() -> None:
    import orch_serv
    import orch_serv.messages

    assert orch_serv.BaseOrchServMsg is BaseOrchServMsg
    assert orch_serv.messages.BaseOrchServMsg is BaseOrchServMsg
    assert issubclass(Msg, BaseOrchServMsg)
