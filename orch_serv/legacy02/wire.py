"""A 0.2 message as an envelope's body, and back.

The body is ``{"orch_serv_02": {"type": "module:Qualname", "message": {...}}}``: the message's
JSON dump and the name of its class, so that each side rebuilds the user's own subclass (and
so its hooks). The class is looked up among the message classes this process has defined
(:data:`orch_serv.legacy02.message.REGISTRY`): nothing is imported because a message names it.
A plain JSON body (from a client that does not use the 0.2 classes) is validated against the
class the handler expects, when it names one.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from orch_serv.exceptions import NonRetryableError
from orch_serv.legacy02.message import REGISTRY, BaseOrchServMsg, type_key

KEY = "orch_serv_02"


def dump(message: BaseOrchServMsg[Any, Any], **flags: Any) -> dict[str, Any]:
    """The envelope body carrying ``message`` (``flags`` are kept beside it)."""
    return {
        KEY: {
            "type": type_key(type(message)),
            "message": message.model_dump(mode="json"),
            **flags,
        }
    }


def is_wrapped(body: Any) -> bool:
    """True when ``body`` carries a 0.2 message."""
    return isinstance(body, dict) and isinstance(body.get(KEY), dict)


def flag(body: Any, name: str) -> Any:
    """A flag stored beside the message (None when absent)."""
    return body[KEY].get(name) if is_wrapped(body) else None


def load_flagged(body: Any, name: str) -> BaseOrchServMsg[Any, Any]:
    """The message stored as the flag ``name`` beside the main one (same class)."""
    return load({KEY: {"type": body[KEY].get("type"), "message": flag(body, name)}})


def load(body: Any, expected: type[Any] | None = None) -> BaseOrchServMsg[Any, Any]:
    """Rebuild the message an envelope body carries. ``expected`` (the class a handler is
    annotated with) is used when the body names no class, and must be a base of the class it
    names. Raises :class:`NonRetryableError` for a body that cannot be rebuilt."""
    if is_wrapped(body):
        name = body[KEY].get("type")
        data = body[KEY].get("message")
        cls: type[Any] | None = REGISTRY.get(name) if isinstance(name, str) else None
        if cls is None:
            if expected is None:
                raise NonRetryableError(
                    f"unknown 0.2 message class {name!r}: it is not defined in this process "
                    "(import the module that defines it in the service's module)",
                    type="UnknownMessageType",
                )
            cls = expected
        elif expected is not None and not issubclass(cls, expected):
            raise NonRetryableError(
                f"the message is a {name}, the handler expects a {type_key(expected)}",
                type="UnexpectedMessageType",
            )
    else:
        if expected is None:
            raise NonRetryableError(
                "the body does not carry a 0.2 message and the handler names no message class "
                "(annotate its `process` parameter with your BaseOrchServMsg subclass)",
                type="UnknownMessageType",
            )
        cls, data = expected, body
    try:
        message: BaseOrchServMsg[Any, Any] = cls.model_validate(data)
    except ValidationError as exc:
        raise NonRetryableError(
            f"the body is not a valid {type_key(cls)}: {exc.error_count()} error(s)",
            type="ValidationError",
        ) from exc
    return message


__all__ = ["KEY", "dump", "flag", "is_wrapped", "load", "load_flagged"]
