"""The stored shape of a run, in one place: the fields of the run hash, what a transition may
write into it (typed), and the constants the Lua scripts share with Python.

The scripts in ``lua/`` never spell a state, a phase, an event code, a timer member or a key
name themselves: :func:`lua_prelude` generates those definitions from the Python ones and the
store prepends it to every script it loads (``tests/unit/test_shape.py`` fails if a script
spells one again).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from orch_serv.constants import TERMINAL_STATES, EventKind, Phase, RunState, TimerKind
from orch_serv.messages.envelope import ErrorInfo
from orch_serv.store.base import KIND_CODES, STORAGE_KEYS, Outcome
from orch_serv.store.keys import Keys, ShardKeys
from orch_serv.store.timers import TimerId


class Field:
    """Names of the run hash's fields."""

    STATE: Final = "state"
    STEP: Final = "step"
    ATTEMPT: Final = "attempt"
    PHASE: Final = "phase"
    CAUSE: Final = "cause"
    KEY: Final = "key"
    KIND: Final = "kind"
    FLOW: Final = "flow"
    VERSION: Final = "version"
    STEP_NAME: Final = "step_name"
    STEPS_TOTAL: Final = "steps_total"
    CREATED_AT: Final = "created_at"
    UPDATED_AT: Final = "updated_at"
    FINISHED_AT: Final = "finished_at"
    DEADLINE: Final = "deadline"
    INPUT: Final = "input"
    STEP_INPUT: Final = "step_input"
    HOOK_PENDING: Final = "hook_pending"
    OUTCOME: Final = "outcome"
    ERROR: Final = "error"
    RESULT: Final = "result"
    #: ``out:<step index>``: the output of a completed step that declares a compensation.
    OUTPUT_PREFIX: Final = "out:"
    #: ``signal:<name>``: the data of a signal sent to the run (orch_serv.store.signals).
    SIGNAL_PREFIX: Final = "signal:"

    @classmethod
    def output(cls, index: int) -> str:
        """The field that keeps step ``index``'s output."""
        return f"{cls.OUTPUT_PREFIX}{index}"


class BeatOutcome:
    """What the heartbeat script answers."""

    STARTED: Final = "STARTED"  #: the start notice: the step's phase became STARTED
    BEAT: Final = "BEAT"  #: a heartbeat of a started step
    STALE: Final = "STALE"  #: the run is not at that step and attempt
    NOT_FOUND: Final = "NOT_FOUND"


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


#: A :class:`RunFields` attribute left as it is stored.
UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class RunFields:
    """What a transition writes into the run hash besides the position. A field left UNSET is
    not touched; None clears it (a JSON null)."""

    #: The body sent to the current step (what a retry of it sends again).
    step_input: Any = UNSET
    #: The current step's pre hook has not run on ``step_input`` yet.
    hook_pending: bool | _Unset | None = UNSET
    #: How a compensating run ends once its compensations are done.
    outcome: RunState | _Unset | None = UNSET
    error: ErrorInfo | _Unset | None = UNSET
    result: Any = UNSET
    deadline: float | _Unset | None = UNSET
    finished_at: float | _Unset | None = UNSET
    #: Outputs of completed steps that declare a compensation, by step index.
    outputs: Mapping[int, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, value: RunFields | Mapping[str, Any] | None) -> RunFields:
        """Typed fields from a mapping of stored names (``out:<i>`` included); a name that is
        not a transition's to write raises ValueError."""
        if value is None:
            return cls()
        if isinstance(value, RunFields):
            return value
        known = {f.name for f in fields(cls)} - {"outputs"}
        given: dict[str, Any] = {}
        outputs: dict[int, Any] = {}
        for name, item in value.items():
            if name.startswith(Field.OUTPUT_PREFIX):
                outputs[int(name[len(Field.OUTPUT_PREFIX) :])] = item
            elif name in known:
                given[name] = _typed(name, item)
            else:
                raise ValueError(f"a transition cannot write the run field {name!r}")
        return cls(**given, outputs=outputs)

    def merged(self, other: RunFields | Mapping[str, Any] | None) -> RunFields:
        """These fields with ``other``'s set ones on top."""
        top = RunFields.of(other)
        changes = {
            f.name: getattr(top, f.name)
            for f in fields(top)
            if f.name != "outputs" and getattr(top, f.name) is not UNSET
        }
        return replace(self, **changes, outputs={**self.outputs, **top.outputs})

    def stored(self) -> list[tuple[str, Any]]:
        """(hash field, JSON-ready value) of every field that is set."""
        pairs = [(name, v) for name in _SCALAR_FIELDS if (v := getattr(self, name)) is not UNSET]
        for k, (name, value) in enumerate(pairs):
            if isinstance(value, ErrorInfo):
                pairs[k] = (name, value.model_dump(exclude_none=True))
            elif isinstance(value, RunState):
                pairs[k] = (name, value.value)
        if self.outputs:
            pairs += [(Field.output(index), value) for index, value in self.outputs.items()]
        return pairs

    def get(self, name: str) -> Any:
        """A set field by its stored name (None if unset)."""
        return dict(self.stored()).get(name)


_SCALAR_FIELDS = tuple(f.name for f in fields(RunFields) if f.name != "outputs")


def _typed(name: str, value: Any) -> Any:
    if name == "error" and isinstance(value, Mapping):
        return ErrorInfo.model_validate(value)
    if name == "outcome" and isinstance(value, str):
        return RunState(value)
    return value


# -- the constants of the Lua scripts ------------------------------------------------------------
_BASE, _ARG = "\x00base\x00", "\x00arg\x00"


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def _key_function(name: str, template: str) -> str:
    """``local function name(base, a) return base .. 'literal' .. a end`` from a key built
    by :class:`ShardKeys` with placeholder arguments (``base``: the shard's key base)."""
    parts: list[str] = []
    rest = template
    while rest:
        cuts = [(rest.find(mark), mark) for mark in (_BASE, _ARG) if mark in rest]
        if not cuts:
            parts.append(_lua_string(rest))
            break
        at, mark = min(cuts)
        if at:
            parts.append(_lua_string(rest[:at]))
        parts.append("base" if mark == _BASE else "a")
        rest = rest[at + len(mark) :]
    return f"local function {name}(base, a) return {' .. '.join(parts)} end"


def lua_prelude() -> str:
    """Lua definitions of the constants the scripts share with Python."""
    keys = ShardKeys(_BASE)
    channel = Keys(_BASE).finished_channel
    deadline_mark = str(TimerId("", TimerKind.DEADLINE)).split(TimerKind.DEADLINE.value)[0]
    lines = [
        "-- generated by orch_serv.store.shape.lua_prelude(): do not spell these in scripts",
        "local STATE = {" + ", ".join(f"{s.name} = {_lua_string(s.value)}" for s in RunState) + "}",
        "local TERMINAL = {"
        + ", ".join(f"[{_lua_string(s.value)}] = true" for s in sorted(TERMINAL_STATES))
        + "}",
        "local PHASE = {" + ", ".join(f"{p.name} = {_lua_string(p.value)}" for p in Phase) + "}",
        "local OUTCOME = {"
        + ", ".join(f"{o.name} = {_lua_string(o.value)}" for o in Outcome)
        + "}",
        "local BEAT = {"
        + ", ".join(
            f"{n} = {_lua_string(getattr(BeatOutcome, n))}"
            for n in ("STARTED", "BEAT", "STALE", "NOT_FOUND")
        )
        + "}",
        f"local LATE_RESULT = {_lua_string(KIND_CODES[EventKind.LATE_RESULT])}",
        f"local EVENT_KIND = {_lua_string(STORAGE_KEYS['kind'])}",
        f"local EVENT_REASON = {_lua_string(STORAGE_KEYS['reason'])}",
        "local DEADLINE_MARK = "
        + _lua_string(f"{deadline_mark}{TimerKind.DEADLINE.value}{deadline_mark}"),
        _key_function("state_index", keys.state_index(_ARG)),
        _key_function("flow_index", keys.flow_index(_ARG)),
        _key_function("key_ref", keys.by_key(_ARG)),
        _key_function("run_hash", keys.run(_ARG)),
        _key_function("finished_channel", channel),
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ScriptArgs:
    """The named arguments of a script: scalars first, in this order, then each list as its
    length and its items. Both sides use the names: :meth:`argv` builds ``ARGV`` from them, and
    :meth:`lua` declares them in the script (locals for the scalars; ``<name>_at`` and
    ``<name>_n``, first index and count in ``ARGV``, for the lists), so the order lives here
    only and no script indexes ``ARGV`` itself. (A JSON object would be simpler still, but
    decoding it costs Redis ~10 us per call, a third of a transition's whole time.)"""

    scalars: tuple[str, ...]
    lists: tuple[str, ...] = ()
    names: frozenset[str] = field(init=False)

    _scalar_values: Callable[[Mapping[str, Any]], Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", frozenset(self.scalars + self.lists))
        getter = operator.itemgetter(*self.scalars)
        single = len(self.scalars) == 1
        object.__setattr__(self, "_scalar_values", (lambda v: (getter(v),)) if single else getter)

    def argv(self, **values: Any) -> list[Any]:
        """``ARGV`` for these named values (every name given, no other)."""
        names = self.names
        if values.keys() != names:
            missing, extra = sorted(names - set(values)), sorted(set(values) - names)
            raise ValueError(f"script arguments: missing {missing}, unexpected {extra}")
        argv: list[Any] = list(self._scalar_values(values))
        for name in self.lists:
            items = values[name]
            argv.append(len(items))
            argv.extend(items)
        return argv

    def lua(self) -> str:
        """The declarations that open the script."""
        count = len(self.scalars)
        lines = [
            "-- arguments (generated by orch_serv.store.shape.ScriptArgs.lua)",
            f"local {', '.join(self.scalars)} = "
            + ", ".join(f"ARGV[{i}]" for i in range(1, count + 1)),
            f"local argv_at = {count + 1}",
        ]
        for name in self.lists:
            lines += [
                f"local {name}_at, {name}_n = argv_at + 1, tonumber(ARGV[argv_at])",
                f"argv_at = {name}_at + {name}_n",
            ]
        return "\n".join(lines) + "\n"


#: The arguments of ``transition.lua`` (pairs lists, ``fields`` and ``timers_add``, hold
#: name, value, name, value ...).
TRANSITION_ARGS = ScriptArgs(
    scalars=(
        "base",
        "prefix",
        "run_id",
        "cause",
        "now",
        "retention_ms",
        "expect_step",
        "expect_attempt",
        "expect_phase",
        "new_state",
        "new_step",
        "new_attempt",
        "new_phase",
        "clear_timers",
        "ignored",
        "join_member",
        "join_timer",
    ),
    lists=("expect_states", "fields", "events", "statuses", "timers_add", "timers_remove"),
)

__all__ = [
    "TRANSITION_ARGS",
    "UNSET",
    "BeatOutcome",
    "Field",
    "RunFields",
    "ScriptArgs",
    "lua_prelude",
]
