"""How a 0.2 orchestrator collects its flows and blocks: lists of classes and/or instances,
or modules; ignore lists; unique identifiers; one mode (sync or async).

Fixed against 0.2: a module contributes the flow (or block) classes it holds and ignores any
other class (0.2 raised ``TypeError`` for an imported helper class, and even for the imported
``SyncFlow`` base itself); subclasses of user flows are recognised (0.2 only looked at
``cls.__base__``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from orch_serv.exc import NoDateException, UniqueNameException, WorkTypeMismatchException
from orch_serv.exc import WrongTypeException as WrongType
from orch_serv.legacy02.blocks import AsyncBlock, SyncBlock
from orch_serv.legacy02.flows import AsyncFlow, SyncFlow

FLOW_BASES: tuple[type, ...] = (SyncFlow, AsyncFlow)
BLOCK_BASES: tuple[type, ...] = (SyncBlock, AsyncBlock)


def _is_member(obj: Any, bases: tuple[type, ...], attr: str) -> bool:
    return (
        isinstance(obj, type)
        and issubclass(obj, bases)
        and obj not in bases
        and isinstance(getattr(obj, attr, None), str)
    )


def _items(value: Any, kind: str, bases: tuple[type, ...], attr: str) -> list[Any]:
    if isinstance(value, ModuleType):
        return [
            cls
            for _, cls in inspect.getmembers(value, inspect.isclass)
            if _is_member(cls, bases, attr)
        ]
    if not isinstance(value, list):
        raise WrongType(kind, str(type(value)))
    for item in value:
        if isinstance(item, type):
            if not issubclass(item, bases) or item in bases:
                raise TypeError(f"{item}: `obj` is not inheritor of {_names(bases)}")
        elif not isinstance(item, bases):
            raise TypeError(f"{type(item)}: `obj` is not inheritor of {_names(bases)}")
    return list(value)


def _names(bases: Iterable[type]) -> str:
    return " or ".join(b.__name__ for b in bases)


def collect(
    value: Any,
    kind: str,
    *,
    ignore: Iterable[str] | None,
    mode: type,
    owner: str,
) -> dict[str, Any]:
    """``{identifier: class or instance}`` of one kind (``"flow"`` or ``"block"``), checked."""
    bases, attr = (FLOW_BASES, "name_flow") if kind == "flow" else (BLOCK_BASES, "name_block")
    ignored = set(ignore or ())
    found: dict[str, Any] = {}
    for item in _items(value, kind, bases, attr):
        cls = item if isinstance(item, type) else type(item)
        name = getattr(item, attr)
        if cls.__name__ in ignored or name in ignored:
            continue
        if not issubclass(cls, mode):
            where = "flows" if kind == "flow" else "targets"
            raise WorkTypeMismatchException(where, owner, mode.__name__)
        if name in found:
            raise UniqueNameException(name, kind)
        found[name] = item
    if not found:
        raise NoDateException(kind)
    return found


__all__ = ["collect"]
