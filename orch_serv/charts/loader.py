"""Loading a chart in StateService's YAML schema, and validating it: every field has the
right type, every target and the current state exist, a counter's ``target.when.key`` is
its ``current.key``, no loop of time states only. A bad chart raises :class:`ChartError`
naming the file, the line and the field.

::

    current_state: green_state
    states:
      - name: green_state
        func: increment                     # or: time
        current: {key: count, value: 0}     # increment only
        target: {name: red_state, when: {key: count, value: 1}}
      - name: red_state                     # no func: an end state
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path as FilePath
from typing import Any, Final

from orch_serv.charts.model import Chart, ChartError, ChartState, Func, check_name
from orch_serv.charts.yamltext import MAX_CHART_BYTES, Path, YamlText, read_yaml

#: Most states a chart may have.
MAX_STATES: Final = 1000
#: Longest state name or counter key.
MAX_NAME: Final = 200

_TOP = ("current_state", "states")
_FIELDS = {
    None: ("name",),
    Func.INCREMENT: ("name", "func", "current", "target"),
    Func.TIME: ("name", "func", "target"),
}


def load_chart(path: str | FilePath, *, name: str | None = None) -> Chart:
    """Read, validate and compile the chart file at ``path``; its name is ``name`` or the
    file's stem."""
    file = FilePath(path)
    source = str(path)
    chart_name = check_name("chart name", name if name is not None else file.stem)
    try:
        size = file.stat().st_size
        if size > MAX_CHART_BYTES:
            raise ChartError(
                source,
                f"the file is {size} bytes; a chart file is at most {MAX_CHART_BYTES} bytes",
            )
        raw = file.read_bytes()
    except OSError as exc:
        raise ChartError(source, f"cannot read the file: {exc.strerror or exc}") from None
    return parse_chart(raw, name=chart_name, source=source)


def parse_chart(text: str | bytes, *, name: str, source: str = "<chart>") -> Chart:
    """Validate and compile a chart from its YAML text (``source`` names it in errors)."""
    check_name("chart name", name)
    doc = read_yaml(text, source)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), f"a chart is a mapping with {' and '.join(_TOP)}")
    _no_unknown(doc, (), data, _TOP)
    states_data = _required(doc, (), data, "states", list)
    if not states_data:
        raise doc.error(("states",), "a chart needs at least one state")
    if len(states_data) > MAX_STATES:
        raise doc.error(("states",), f"a chart has at most {MAX_STATES} states")
    names: dict[str, int] = {}
    for i, item in enumerate(states_data):
        where: Path = ("states", i)
        if not isinstance(item, dict):
            raise doc.error(where, "a state is a mapping with at least a name")
        state_name = _text(doc, (*where, "name"), _required(doc, where, item, "name", str))
        if state_name in names:
            raise doc.error(
                (*where, "name"), f"{state_name!r} is also the name of states[{names[state_name]}]"
            )
        names[state_name] = i
    current = _text(doc, ("current_state",), _required(doc, (), data, "current_state", str))
    if current not in names:
        raise doc.error(("current_state",), _unknown_state(current, names))
    states = tuple(_state(doc, ("states", i), item, names) for i, item in enumerate(states_data))
    _no_timed_loop(doc, states)
    return Chart(name, states, names[current])


def _state(doc: YamlText, where: Path, item: dict[str, Any], names: dict[str, int]) -> ChartState:
    name = str(item["name"])
    raw_func = item.get("func")
    if "func" not in item:
        extra = [k for k in ("current", "target") if k in item]
        if extra:
            raise doc.error(
                (*where, extra[0]),
                "a state without `func` is an end state and has no current or target "
                "(add `func: increment` or `func: time`)",
            )
        _no_unknown(doc, where, item, _FIELDS[None])
        return ChartState(name)
    if not isinstance(raw_func, str) or raw_func not in {f.value for f in Func}:
        raise doc.error((*where, "func"), f"must be 'increment' or 'time', not {raw_func!r}")
    func = Func(raw_func)
    if func is Func.TIME and "current" in item:
        raise doc.error((*where, "current"), "a time state has no counter (no `current`)")
    _no_unknown(doc, where, item, _FIELDS[func])
    target = _required(doc, where, item, "target", dict)
    _no_unknown(doc, (*where, "target"), target, ("name", "when"))
    target_name = _text(
        doc, (*where, "target", "name"), _required(doc, (*where, "target"), target, "name", str)
    )
    if target_name not in names:
        raise doc.error((*where, "target", "name"), _unknown_state(target_name, names))
    when = _required(doc, (*where, "target"), target, "when", dict)
    when_at: Path = (*where, "target", "when")
    _no_unknown(doc, when_at, when, ("key", "value"))
    if func is Func.TIME:
        key = when.get("key")
        if key is not None:
            key = _text(
                doc,
                (*when_at, "key"),
                key if isinstance(key, str) else _not_str(doc, (*when_at, "key"), key),
            )
        if "value" not in when:
            raise doc.error((*when_at, "value"), "required: the time, ISO 8601 (quote it)")
        at = _time(doc, (*when_at, "value"), when["value"])
        return ChartState(name, func, names[target_name], key, at=at)
    current = _required(doc, where, item, "current", dict)
    _no_unknown(doc, (*where, "current"), current, ("key", "value"))
    key = _text(
        doc, (*where, "current", "key"), _required(doc, (*where, "current"), current, "key", str)
    )
    start = _integer(
        doc,
        (*where, "current", "value"),
        _required(doc, (*where, "current"), current, "value", int),
    )
    when_key = _required(doc, when_at, when, "key", str)
    if when_key != key:
        raise doc.error(
            (*when_at, "key"),
            f"{when_key!r} is not the counter of this state: current.key is {key!r}",
        )
    goal = _integer(doc, (*when_at, "value"), _required(doc, when_at, when, "value", int))
    return ChartState(name, func, names[target_name], key, start=start, target=goal)


def _no_timed_loop(doc: YamlText, states: tuple[ChartState, ...]) -> None:
    """A loop made of time states only would fire forever once its times have passed."""
    for i in range(len(states)):
        seen: list[int] = []
        at: int | None = i
        while at is not None and states[at].func is Func.TIME and at not in seen:
            seen.append(at)
            at = states[at].next
        if at is not None and at in seen and at == i:
            loop = " -> ".join(states[j].name for j in [*seen, i])
            raise doc.error(
                ("states", i, "target", "name"),
                f"a loop of time states only ({loop}) would fire forever once its times "
                "have passed",
            )


_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a mapping"}


def _required(doc: YamlText, where: Path, data: dict[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise doc.error((*where, key), f"required ({_TYPE_NAMES[kind]})")
    value = data[key]
    if kind is str and not isinstance(value, str):
        _not_str(doc, (*where, key), value)
    if kind is int:
        return value  # checked by _integer, which says more
    if not isinstance(value, kind):
        raise doc.error((*where, key), f"must be {_TYPE_NAMES[kind]}, not {_shown(value)}")
    return value


def _not_str(doc: YamlText, path: Path, value: Any) -> Any:
    hint = " (quote it)" if isinstance(value, bool | int | float | date) else ""
    raise doc.error(path, f"must be a string, not {_shown(value)}{hint}")


def _text(doc: YamlText, path: Path, value: str) -> str:
    if not value or value != value.strip():
        raise doc.error(path, "must be a non-empty name without leading or trailing spaces")
    if len(value) > MAX_NAME or any(not c.isprintable() for c in value):
        raise doc.error(path, f"must be at most {MAX_NAME} printable characters")
    return value


def _integer(doc: YamlText, path: Path, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise doc.error(path, f"must be an integer, not {_shown(value)}")
    if abs(value) > 2**53:
        raise doc.error(path, "must be between -2**53 and 2**53")
    return int(value)


def _time(doc: YamlText, path: Path, value: Any) -> datetime:
    """ISO 8601 with an offset; a naive time is UTC (StateService used the local time)."""
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, date):
        at = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.strip())
        except ValueError:
            raise doc.error(
                path,
                f"{value!r} is not an ISO 8601 time (e.g. '2030-01-31T12:00:00+01:00'; "
                "without an offset it is UTC)",
            ) from None
    else:
        raise doc.error(path, f"must be an ISO 8601 time, not {_shown(value)}")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _no_unknown(doc: YamlText, where: Path, data: dict[Any, Any], known: tuple[str, ...]) -> None:
    for key in data:
        if key not in known:
            raise doc.error((*where, str(key)), f"unknown field (expected: {', '.join(known)})")


def _unknown_state(name: str, names: dict[str, int]) -> str:
    listed = ", ".join(list(names)[:20]) + (", ..." if len(names) > 20 else "")
    return f"{name!r} is not a state of this chart (states: {listed})"


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }
    text = repr(value)
    return f"{kind.get(type(value), type(value).__name__)} {text[:40]}"


__all__ = ["MAX_STATES", "load_chart", "parse_chart"]
