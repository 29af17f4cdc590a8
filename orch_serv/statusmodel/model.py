"""Status models (Statusek's "objects"): named statuses of type MANDATORY, OPTIONAL or STOP,
the workflow edges between them (a status's predecessors), and an instance timeout.

::

    task = StatusModel(
        "2-POINT LINE TASK",
        statuses=[
            Status("STARTED", StatusType.MANDATORY),
            Status("FINISHED", StatusType.MANDATORY, after=["STARTED"]),
        ],
    )

A model is checked when it is built (unique names, known predecessors, no cycle) and is
immutable; its ``version`` is a hash of what it says, so an instance can pin the exact rules
it was created under.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class StatusType(StrEnum):
    """What setting a status means for its instance (see ``docs/api.md``)."""

    #: Every MANDATORY status must be set for the instance to finish.
    MANDATORY = "MANDATORY"
    #: May be skipped; cannot be set once one of its successors is.
    OPTIONAL = "OPTIONAL"
    #: Finishes the instance when set (Statusek spelled it ``STOP-STATUS``).
    STOP = "STOP"

    @classmethod
    def parse(cls, value: str | StatusType) -> StatusType:
        """The type ``value`` names (case-insensitive; ``STOP-STATUS`` is ``STOP``)."""
        if isinstance(value, StatusType):
            return value
        text = str(value).strip().upper().replace("_", "-")
        if text == "STOP-STATUS":
            return cls.STOP
        try:
            return cls(text)
        except ValueError:
            known = ", ".join([t.value for t in cls] + ["STOP-STATUS"])
            raise ValueError(f"unknown status type {value!r} (known: {known})") from None


class Status(BaseModel):
    """One status of a model: its name, type, description and predecessors (``after``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    type: StatusType = StatusType.MANDATORY
    description: str = ""
    #: The statuses this one follows (Statusek's ``workflows`` edges ``prev -> this``).
    after: tuple[str, ...] = ()

    def __init__(
        self,
        name: str | None = None,
        type: StatusType | str = StatusType.MANDATORY,
        description: str = "",
        after: Iterable[str] = (),
        **data: Any,
    ) -> None:
        if name is not None:
            data["name"] = name
        data.setdefault("type", type)
        data.setdefault("description", description)
        data.setdefault("after", tuple(after))
        super().__init__(**data)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("a status name has no leading or trailing spaces")
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> StatusType:
        if not isinstance(value, str):
            raise ValueError(f"a status type is a string, not {type(value).__name__}")
        return StatusType.parse(value)

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value


class StatusModel(BaseModel):
    """A status model: ``StatusModel(name, statuses=[...], timeout_seconds=...)``.

    ``timeout_seconds`` is the default instance timeout, counted from the instance's creation
    (``instance/create`` may give its own); None means instances do not time out unless their
    creator says so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    statuses: tuple[Status, ...] = Field(min_length=1)
    timeout_seconds: float | None = Field(None, ge=0)
    description: str = ""
    #: A hash of the definition, filled in when the model is built.
    version: str = ""

    def __init__(self, name: str | None = None, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        super().__init__(**data)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError("a model name has no leading or trailing spaces")
        return value

    @model_validator(mode="after")
    def _check(self) -> StatusModel:
        names = [s.name for s in self.statuses]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise ValueError(f"status {name!r} is declared twice")
            seen.add(name)
        for status in self.statuses:
            for prev in status.after:
                if prev not in seen:
                    raise ValueError(f"status {status.name!r} follows unknown status {prev!r}")
                if prev == status.name:
                    raise ValueError(f"status {status.name!r} follows itself")
        cycle = _cycle(self.statuses)
        if cycle:
            raise ValueError(f"the statuses form a cycle: {' -> '.join(cycle)}")
        version = _version(self)
        if self.version and self.version != version:
            raise ValueError(f"version {self.version!r} does not match the definition")
        object.__setattr__(self, "version", version)
        return self

    # -- what the rules need -------------------------------------------------------------------
    def status(self, name: str) -> Status | None:
        """The status called ``name``, or None."""
        for status in self.statuses:
            if status.name == name:
                return status
        return None

    def successors(self, name: str) -> tuple[str, ...]:
        """The statuses that follow ``name``."""
        return tuple(s.name for s in self.statuses if name in s.after)

    @property
    def mandatory(self) -> tuple[str, ...]:
        """Every MANDATORY status."""
        return tuple(s.name for s in self.statuses if s.type is StatusType.MANDATORY)

    def status_id(self, name: str) -> int:
        """Statusek's numeric status id: the status's 1-based position in the model."""
        for index, status in enumerate(self.statuses, start=1):
            if status.name == name:
                return index
        return 0

    @property
    def object_id(self) -> int:
        """Statusek's numeric object id: a stable number derived from the model's name."""
        return zlib.crc32(self.name.encode()) & 0x7FFFFFFF

    def to_json(self) -> str:
        """The stored form."""
        return self.model_dump_json()


def _version(model: StatusModel) -> str:
    payload = model.model_dump(mode="json", exclude={"version"})
    digest = hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:12]


def _cycle(statuses: tuple[Status, ...]) -> list[str]:
    """A cycle of predecessor edges, as names (empty when there is none)."""
    after = {s.name: s.after for s in statuses}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for prev in after[name]:
            if state.get(prev) == 1:
                return [*path[path.index(prev) :], prev]
            if prev not in state:
                found = visit(prev)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return []

    for status in statuses:
        if status.name not in state:
            found = visit(status.name)
            if found:
                return found
    return []


#: Statusek's default model: STARTED -> FINISHED, both MANDATORY.
TWO_POINT_LINE_TASK = StatusModel(
    "2-POINT LINE TASK",
    statuses=[
        Status("STARTED", StatusType.MANDATORY, "Task is started"),
        Status("FINISHED", StatusType.MANDATORY, "Task is finished", after=["STARTED"]),
    ],
    description="Statusek's default model",
)

#: The models every deployment has, published or not.
BUILTIN_MODELS: dict[str, StatusModel] = {TWO_POINT_LINE_TASK.name: TWO_POINT_LINE_TASK}

__all__ = ["BUILTIN_MODELS", "TWO_POINT_LINE_TASK", "Status", "StatusModel", "StatusType"]
