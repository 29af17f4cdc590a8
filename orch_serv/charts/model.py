"""A state chart (StateService's YAML machine), validated and compiled: its states in order,
each knowing what moves it on (a counter reaching a value, or a point in time) and the index
of its target. This compiled form is what Redis keeps and what ``chart_put.lua`` runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

import orjson

from orch_serv.exceptions import OrchServError

#: Names of charts and machines: they are in URLs, run ids and Redis keys.
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class ChartError(OrchServError):
    """A chart that cannot be used: the file, the line (1-based) and the field it is about
    (each None when it does not apply), and what is wrong."""

    def __init__(
        self, source: str, problem: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
        self.source = source
        self.line = line
        self.field = field
        self.problem = problem


class ChartNotFound(OrchServError):
    """No chart, or no machine of a chart, by that name."""


class Func(StrEnum):
    """What moves a state on (a state without one is an end state)."""

    #: Each PUT adds 1 to the state's counter; the state moves on once the counter reaches
    #: ``target`` (``>=``, see docs/charts.md).
    INCREMENT = "increment"
    #: The state moves on by itself once its point in time has passed; PUT is refused.
    TIME = "time"


class Stored:
    """Keys of the stored (JSON) form of a chart; ``chart_put.lua`` gets them generated."""

    NAME: Final = "name"
    VERSION: Final = "version"
    INITIAL: Final = "initial"
    STATES: Final = "states"
    FUNC: Final = "func"
    NEXT: Final = "next"
    KEY: Final = "key"
    START: Final = "start"
    TARGET: Final = "target"
    DUE_MS: Final = "due_ms"


@dataclass(frozen=True, slots=True)
class ChartState:
    """One state. ``next`` is the index of the target state (None for an end state); an
    increment state counts ``key`` from ``start`` up to ``target``; a time state moves on at
    ``at`` (timezone-aware)."""

    name: str
    func: Func | None = None
    next: int | None = None
    key: str | None = None
    start: int = 0
    target: int = 0
    at: datetime | None = None

    @property
    def end(self) -> bool:
        """True for an end state (no ``func``)."""
        return self.func is None

    @property
    def due_ms(self) -> int | None:
        """When a time state moves on, in whole milliseconds since the epoch."""
        return None if self.at is None else round(self.at.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Chart:
    """A validated chart: its name, states (in file order) and the index of the state a new
    machine starts in. ``version`` is a hash of the content (not of the name)."""

    name: str
    states: tuple[ChartState, ...]
    initial: int

    @property
    def version(self) -> str:
        """12 hex digits of the SHA-256 of the compiled states and the initial state."""
        content = orjson.dumps(
            [self.initial, [_stored_state(s) for s in self.states]], option=orjson.OPT_SORT_KEYS
        )
        return hashlib.sha256(content).hexdigest()[:12]

    def index(self, state: str) -> int | None:
        """The index of the state named ``state``, or None."""
        for i, item in enumerate(self.states):
            if item.name == state:
                return i
        return None

    def stored(self) -> dict[str, Any]:
        """The compiled form kept in Redis (and in every machine of this version)."""
        return {
            Stored.NAME: self.name,
            Stored.VERSION: self.version,
            Stored.INITIAL: self.initial,
            Stored.STATES: [_stored_state(s) for s in self.states],
        }

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Chart:
        """The inverse of :meth:`stored`."""
        states = []
        for item in data[Stored.STATES]:
            due = item.get(Stored.DUE_MS)
            func = item.get(Stored.FUNC)
            states.append(
                ChartState(
                    name=item[Stored.NAME],
                    func=Func(func) if func else None,
                    next=item.get(Stored.NEXT),
                    key=item.get(Stored.KEY),
                    start=int(item.get(Stored.START) or 0),
                    target=int(item.get(Stored.TARGET) or 0),
                    at=None if due is None else datetime.fromtimestamp(due / 1000, UTC),
                )
            )
        return cls(data[Stored.NAME], tuple(states), int(data[Stored.INITIAL]))

    def seed_form(
        self, counters: dict[str, int] | None = None, current: str | None = None
    ) -> dict[str, Any]:
        """The chart in StateService's YAML schema (what its ``save()`` wrote), with the
        given counters and current state (a machine's) or the initial ones."""
        states: list[dict[str, Any]] = []
        for state in self.states:
            item: dict[str, Any] = {"name": state.name}
            if state.func is not None and state.next is not None:
                item["func"] = state.func.value
                target = self.states[state.next].name
                if state.func is Func.INCREMENT:
                    value = (counters or {}).get(state.name, state.start)
                    item["current"] = {"key": state.key, "value": value}
                    item["target"] = {
                        "name": target,
                        "when": {"key": state.key, "value": state.target},
                    }
                else:
                    assert state.at is not None
                    item["target"] = {
                        "name": target,
                        "when": {"key": state.key or "time", "value": state.at.isoformat()},
                    }
            states.append(item)
        return {"current_state": current or self.states[self.initial].name, "states": states}


def _stored_state(state: ChartState) -> dict[str, Any]:
    item: dict[str, Any] = {Stored.NAME: state.name}
    if state.func is not None:
        item[Stored.FUNC] = state.func.value
        item[Stored.NEXT] = state.next
        if state.key is not None:
            item[Stored.KEY] = state.key
    if state.func is Func.INCREMENT:
        item[Stored.START] = state.start
        item[Stored.TARGET] = state.target
    elif state.func is Func.TIME:
        item[Stored.DUE_MS] = state.due_ms
    return item


def check_name(what: str, value: str) -> str:
    """``value`` if it is a valid chart or machine name, else :class:`ChartError`."""
    if not NAME_PATTERN.fullmatch(value):
        raise ChartError(
            what,
            f"{value!r} is not a valid name (1-64 characters: letters, digits, '_', '.', '-')",
        )
    return value


__all__ = [
    "NAME_PATTERN",
    "Chart",
    "ChartError",
    "ChartNotFound",
    "ChartState",
    "Func",
    "Stored",
    "check_name",
]
