"""orch_serv 0.2's message: ``BaseOrchServMsg``, generic over its body and header.

It is the user's message, not the wire envelope (:class:`orch_serv.messages.Envelope`):
the five hooks raise :class:`NotImplementedError` until a subclass overrides them. When a
0.2 program runs distributed, the whole message travels as an envelope's body and is rebuilt
with its own class on the other side (:mod:`orch_serv.legacy02.wire`). Every subclass
registers itself under ``module:qualname`` for that purpose.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field

SubPydanticBodyModel = TypeVar("SubPydanticBodyModel")
SubPydanticHeaderModel = TypeVar("SubPydanticHeaderModel")

#: Every message class defined so far, by ``module:qualname`` (what the wire names).
REGISTRY: dict[str, type[BaseOrchServMsg[Any, Any]]] = {}


def type_key(cls: type[Any]) -> str:
    """The name a message class travels under: ``module:qualname``."""
    return f"{cls.__module__}:{cls.__qualname__}"


class BaseOrchServMsg(BaseModel, Generic[SubPydanticBodyModel, SubPydanticHeaderModel]):
    """A message between orchestrator and services: ``body`` (required) and ``header``
    (optional in the generic form ``BaseOrchServMsg[Body, Header]``; a subclass that
    re-declares ``header: MyHeader`` makes it required).

    Override ``get_source``/``set_source`` (the last block that processed the message),
    ``get_flow`` (the flow's name), ``get_target`` (a single block's name) and
    ``get_command`` (a service's command) as your message format requires.
    """

    _registry: ClassVar[dict[str, type[Any]]] = REGISTRY

    body: SubPydanticBodyModel = Field(...)
    header: SubPydanticHeaderModel | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        REGISTRY[type_key(cls)] = cls

    def get_source(self) -> str | None:
        """The name of the last block that processed the message."""
        raise NotImplementedError

    def set_source(self, source: str) -> None:
        """Remember ``source`` as the last block that processed the message."""
        raise NotImplementedError

    def get_flow(self) -> str | None:
        """The name of the flow the message runs in."""
        raise NotImplementedError

    def get_target(self) -> str | None:
        """The name of a single block to run instead of a flow."""
        raise NotImplementedError

    def get_command(self) -> str | None:
        """The command a service must execute."""
        raise NotImplementedError


__all__ = ["REGISTRY", "BaseOrchServMsg", "type_key"]
