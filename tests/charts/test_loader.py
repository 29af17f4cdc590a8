"""Loading and validating charts: the seed's example loads; every bad chart is refused with
an error that names the file, the line and the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from orch_serv.charts import Chart, ChartError, Func, load_chart, parse_chart
from orch_serv.charts.yamltext import MAX_CHART_BYTES

SEED = """\
current_state: green_state
states:
  - name: green_state
    func: increment
    current:
      key: count
      value: 0
    target:
      name: red_state
      when:
        key: count
        value: 1
  - name: red_state
    func: increment
    current:
      key: count
      value: 0
    target:
      name: blue_state
      when:
        key: count
        value: 1
  - name: blue_state
"""


def refused(text: str) -> ChartError:
    with pytest.raises(ChartError) as info:
        parse_chart(text, name="c", source="c.yaml")
    assert str(info.value).startswith("c.yaml")
    return info.value


def test_the_seed_readme_chart_loads() -> None:
    chart = parse_chart(SEED, name="states")
    assert [s.name for s in chart.states] == ["green_state", "red_state", "blue_state"]
    assert chart.initial == 0
    green, red, blue = chart.states
    assert (green.func, green.next, green.key, green.start, green.target) == (
        Func.INCREMENT,
        1,
        "count",
        0,
        1,
    )
    assert red.next == 2 and blue.end and not green.end
    assert chart.seed_form()["states"][0] == {
        "name": "green_state",
        "func": "increment",
        "current": {"key": "count", "value": 0},
        "target": {"name": "red_state", "when": {"key": "count", "value": 1}},
    }


def test_the_version_is_the_content_and_survives_storage() -> None:
    chart = parse_chart(SEED, name="states")
    assert parse_chart(SEED, name="other").version == chart.version
    assert parse_chart(SEED.replace("value: 1", "value: 2", 1), name="states").version != (
        chart.version
    )
    assert Chart.from_stored(chart.stored()) == chart


def test_a_file_is_named_after_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(SEED)
    assert load_chart(path).name == "deploy"
    assert load_chart(path, name="web").name == "web"


def test_time_states_take_iso_8601_with_offset_and_naive_is_utc() -> None:
    text = """\
current_state: wait
states:
  - name: wait
    func: time
    target: {name: next, when: {key: time, value: '2030-01-31T12:00:00+01:00'}}
  - name: next
    func: time
    target: {name: done, when: {key: time, value: '2030-01-31T12:00:00'}}
  - name: done
"""
    chart = parse_chart(text, name="t")
    wait, nxt, _ = chart.states
    assert wait.at == datetime(2030, 1, 31, 12, tzinfo=timezone(timedelta(hours=1)))
    assert nxt.at == datetime(2030, 1, 31, 12, tzinfo=UTC)
    assert wait.due_ms == round(datetime(2030, 1, 31, 11, tzinfo=UTC).timestamp() * 1000)
    assert Chart.from_stored(chart.stored()).states[0].due_ms == wait.due_ms


def test_unquoted_yaml_timestamps_and_the_year_3000_are_fine() -> None:
    text = """\
current_state: wait
states:
  - name: wait
    func: time
    target: {name: done, when: {key: time, value: 3000-01-01T00:00:00}}
  - name: done
"""
    assert parse_chart(text, name="t").states[0].at == datetime(3000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        (
            SEED.replace("name: red_state\n      when", "name: purple\n      when"),
            9,
            "states[0].target.name",
            "'purple' is not a state of this chart",
        ),
        (
            SEED.replace("current_state: green_state", "current_state: nowhere"),
            1,
            "current_state",
            "'nowhere' is not a state",
        ),
        (
            SEED.replace("value: 0", "value: '0'", 1),
            7,
            "states[0].current.value",
            "must be an integer, not a string '0'",
        ),
        (
            SEED.replace("value: 1", "value: 1.5", 1),
            12,
            "states[0].target.when.value",
            "must be an integer",
        ),
        (
            SEED.replace("value: 1", "value: true", 1),
            12,
            "states[0].target.when.value",
            "must be an integer, not a boolean",
        ),
        (
            SEED.replace("- name: blue_state", "- name: 123"),
            23,
            "states[2].name",
            "must be a string, not an integer 123 (quote it)",
        ),
        (
            SEED.replace("func: increment", "func: decrement", 1),
            4,
            "states[0].func",
            "must be 'increment' or 'time'",
        ),
        (
            SEED.replace("  - name: blue_state", "  - name: red_state"),
            23,
            "states[2].name",
            "'red_state' is also the name of states[1]",
        ),
        (
            SEED.replace("    current:\n", "    curent:\n", 1),
            5,
            "states[0].curent",
            "unknown field",
        ),
        (
            SEED.replace(
                "        key: count\n        value: 1", "        key: other\n        value: 1", 1
            ),
            11,
            "states[0].target.when.key",
            "is not the counter of this state",
        ),
        (
            SEED.replace("  - name: blue_state", "  - name: blue_state\n    target: {name: x}"),
            24,
            "states[2].target",
            "is an end state",
        ),
        (
            SEED.replace("states:\n", "states: 3\n").split("  - name")[0],
            2,
            "states",
            "must be a list",
        ),
        ("current_state: a\nstates: []\n", 2, "states", "at least one state"),
        ("states:\n  - name: a\n", 1, "current_state", "required"),
        ("- a\n- b\n", 1, "(document)", "a chart is a mapping"),
        (
            SEED.replace("    func: increment\n", "", 1),
            4,
            "states[0].current",
            "a state without `func` is an end state",
        ),
    ],
)
def test_a_bad_chart_names_file_line_and_field(
    text: str, line: int, field: str, problem: str
) -> None:
    error = refused(text)
    assert (error.source, error.line, error.field) == ("c.yaml", line, field), str(error)
    assert problem in error.problem
    assert str(error).startswith(f"c.yaml:{line}: {field}: ")


def test_time_states_are_checked() -> None:
    base = """\
current_state: w
states:
  - name: w
    func: time
    target: {name: d, when: {key: time, value: VALUE}}
  - name: d
"""
    error = refused(base.replace("VALUE", "'next tuesday'"))
    assert (error.line, error.field) == (5, "states[0].target.when.value")
    assert "not an ISO 8601 time" in error.problem
    error = refused(base.replace("VALUE", "12"))
    assert "must be an ISO 8601 time, not an integer" in error.problem
    error = refused(
        base.replace("    func: time\n", "    func: time\n    current: {key: a, value: 0}\n")
    )
    assert (error.line, error.field) == (5, "states[0].current")


def test_a_loop_of_time_states_is_refused() -> None:
    text = """\
current_state: a
states:
  - name: a
    func: time
    target: {name: b, when: {value: '2020-01-01T00:00:00Z'}}
  - name: b
    func: time
    target: {name: a, when: {value: '2020-01-01T00:00:00Z'}}
"""
    error = refused(text)
    assert (error.line, error.field) == (5, "states[0].target.name")
    assert "a -> b -> a" in error.problem


def test_a_loop_through_a_counter_is_allowed() -> None:
    text = """\
current_state: a
states:
  - name: a
    func: time
    target: {name: b, when: {value: '2020-01-01T00:00:00Z'}}
  - name: b
    func: increment
    current: {key: n, value: 0}
    target: {name: a, when: {key: n, value: 1}}
"""
    assert parse_chart(text, name="loop").states[1].next == 0


@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        (
            "current_state: !!python/object/apply:os.system ['echo pwned']\nstates: []\n",
            1,
            "current_state",
            "the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'",
        ),
        (
            "current_state: a\nstates:\n  - !state {name: a}\n",
            3,
            "states[0]",
            "the YAML tag '!state' is not allowed",
        ),
        ("current_state: a\nstates: !!set {a: null}\n", 2, "states", "is not allowed"),
        (
            "current_state: &x a\nstates:\n  - name: *x\n",
            3,
            "states[0].name",
            "aliases (*name) are not allowed",
        ),
        (
            "current_state: a\ncurrent_state: b\nstates: []\n",
            2,
            "current_state",
            "the key 'current_state' appears twice",
        ),
    ],
)
def test_unsafe_or_tricky_yaml_is_refused(text: str, line: int, field: str, problem: str) -> None:
    error = refused(text)
    assert (error.line, error.field) == (line, field), str(error)
    assert problem in error.problem


def test_billion_laughs_is_refused_at_the_first_alias() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, 9):
        prev, cur = chr(ord("a") + n - 1), chr(ord("a") + n)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
    error = refused("\n".join(lines) + "\n")
    assert "aliases" in error.problem and error.line == 2


def test_not_yaml_and_several_documents_are_refused() -> None:
    error = refused("current_state: [unclosed\nstates: []\n")
    assert error.problem.startswith("not valid YAML") and error.line is not None
    error = refused("current_state: a\n---\ncurrent_state: b\n")
    assert "not valid YAML" in error.problem and error.line == 2
    assert "a chart is a mapping" in refused("").problem


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_CHART_BYTES + "\n" + SEED)
    with pytest.raises(ChartError, match=r"big.yaml: the file is \d+ bytes; a chart file is at"):
        load_chart(big)
    with pytest.raises(ChartError, match="at most"):
        parse_chart("#" * (MAX_CHART_BYTES + 1), name="c")


def test_deep_nesting_and_binary_are_refused() -> None:
    assert "nested too deeply" in refused("a: " + "[" * 5000 + "]" * 5000 + "\n").problem
    with pytest.raises(ChartError, match="not UTF-8"):
        parse_chart(b"\xff\xfe", name="c")


def test_file_and_name_errors(tmp_path: Path) -> None:
    with pytest.raises(ChartError, match=r"missing.yaml: cannot read the file"):
        load_chart(tmp_path / "missing.yaml")
    (tmp_path / "bad name!.yaml").write_text(SEED)
    with pytest.raises(ChartError, match="'bad name!' is not a valid name"):
        load_chart(tmp_path / "bad name!.yaml")
    with pytest.raises(ChartError, match="'a@b' is not a valid name"):
        parse_chart(SEED, name="a@b")


def test_state_names_must_be_clean() -> None:
    error = refused(SEED.replace("- name: blue_state", "- name: ' blue'"))
    assert (error.line, error.field) == (23, "states[2].name")
    assert "leading or trailing spaces" in error.problem
