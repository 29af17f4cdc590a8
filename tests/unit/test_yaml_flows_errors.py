"""Bad flow files: each is refused with a clear error naming the file, the line and the field,
and nothing is returned (no half-loaded orchestrator)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orch_serv.exceptions import ConfigurationError
from orch_serv.flow.yamlflows import (
    FlowFileError,
    load_flow_file,
    load_orchestrator,
    parse_flow_file,
)
from orch_serv.flow.yamlflows.text import MAX_FLOW_FILE_BYTES

HOOKS = "tests.unit.yaml_flows_hooks"
GOOD_STEP = "{block: a, service: s}"


def refused(text: str | bytes) -> FlowFileError:
    with pytest.raises(FlowFileError) as caught:
        parse_flow_file(text, "bad.yaml")
    error = caught.value
    assert str(error).startswith("bad.yaml"), error
    return error


# -- field, line and problem -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line", "field", "problem"),
    [
        ("flows:\n  - name: f\n    steps: []\n", 3, "flows[0].steps", "at least 1 item"),
        ("flows:\n  - name: f\n", 2, "flows[0].steps", "required field is missing"),
        ("blocks: []\n", 1, "flows", "required field is missing"),
        (
            f"flows:\n  - name: f\n    steps:\n      - {GOOD_STEP}\n      - block: b\n"
            "        service: s\n        servise: t\n",
            7,
            "flows[0].steps[1].servise",
            "unknown field",
        ),
        (
            f"flows:\n  - name: 'no spaces'\n    steps: [{GOOD_STEP}]\n",
            2,
            "flows[0].name",
            "'no spaces' is not a name of 1-128 letters",
        ),
        (
            "flows:\n  - name: f\n    steps:\n      - {block: a, service: s, pre_hook: nope}\n",
            4,
            "flows[0].steps[0].pre_hook",
            "'nope' is not an import path 'package.module:attribute'",
        ),
        (
            f"flows:\n  - name: f\n    deadline: -5\n    steps: [{GOOD_STEP}]\n",
            3,
            "flows[0].deadline",
            "greater than 0",
        ),
        (
            f"flows:\n  - name: f\n    deadline: true\n    steps: [{GOOD_STEP}]\n",
            3,
            "flows[0].deadline",
            "valid number",
        ),
        (
            f"flows:\n  - name: f\n    steps: [{GOOD_STEP}]\n    retry:\n      max_attempts: 0\n",
            5,
            "flows[0].retry.max_attempts",
            "greater than or equal to 1",
        ),
        (
            "flows:\n  - name: f\n    steps:\n      - block: a\n        service: s\n"
            "        timeouts: {heartbeat: 10, execution: 5}\n",
            6,
            "flows[0].steps[0].timeouts",
            "heartbeat timeout longer than the execution timeout",
        ),
        (
            f"flows:\n  - name: f\n    steps: [{GOOD_STEP}]\n    retry: {{max_attempts: '3'}}\n",
            4,
            "flows[0].retry.max_attempts",
            "valid integer",
        ),
        (
            f"flows:\n  - name: f\n    steps: [{GOOD_STEP}]\n    retry: {{non_retryable: [1]}}\n",
            4,
            "flows[0].retry.non_retryable",
            "valid frozenset",
        ),
        (
            f"flows:\n  - name: f\n    steps: [{GOOD_STEP}]\n    timeouts: {{total: 1 minute}}\n",
            4,
            "flows[0].timeouts.total",
            "valid number",
        ),
        (
            "flows:\n  - name: f\n    steps:\n      - a\n",
            4,
            "flows[0].steps[0]",
            "expected a mapping, not a string",
        ),
        (
            "flows:\n  - name: f\n    steps: {a: 1}\n",
            3,
            "flows[0].steps",
            "expected a list, not a mapping",
        ),
        (
            f"flows:\n  - name: f\n    steps: [{GOOD_STEP}]\n    retry: 5\n",
            4,
            "flows[0].retry",
            "expected a mapping, not a number",
        ),
        (
            "flows:\n  - name: 3\n    steps: []\n",
            2,
            "flows[0].name",
            "valid string",
        ),
        (
            f"flows:\n  - name: f\n    status_model: ''\n    steps: [{GOOD_STEP}]\n",
            3,
            "flows[0].status_model",
            "at least 1 character",
        ),
        (
            f"flows:\n  - name: f\n    steps: [{GOOD_STEP}]\n"
            f"  - name: f\n    steps: [{GOOD_STEP}]\n",
            4,
            "flows[1].name",
            "flow 'f' is also flows[0]",
        ),
        (
            "blocks:\n  - {name: a, service: s}\n  - {name: a, service: t}\n"
            "flows: [{name: f, steps: [{block: a}]}]\n",
            3,
            "blocks[1].name",
            "block 'a' is also blocks[0]",
        ),
        (
            "flows:\n  - name: f\n    steps:\n      - block: ghost\n",
            4,
            "flows[0].steps[0].block",
            "no block 'ghost' in `blocks`",
        ),
        (
            "blocks: [{name: a, service: s}]\nflows:\n  - name: f\n    steps:\n"
            "      - block: a\n        command: other\n",
            6,
            "flows[0].steps[0].command",
            "block 'a' of `blocks` runs 'a'",
        ),
        (
            "blocks: [{name: a, service: s}]\nflows:\n  - name: f\n    steps:\n"
            "      - block: a\n        service: t\n",
            6,
            "flows[0].steps[0].service",
            "use another block name for another command",
        ),
        (
            "flows:\n  - name: f\n    steps:\n      - {block: a, service: s}\n"
            "      - {block: a, service: t}\n",
            3,
            "flows[0].steps",
            "Not unique block 'a' in flow 'f'",
        ),
        (
            f"flows:\n  - name: f\n    steps:\n      - {{block: a, service: s, "
            f"post_hook: '{HOOKS}:missing'}}\n",
            4,
            "flows[0].steps[0].post_hook",
            "has no attribute 'missing'",
        ),
        (
            f"flows:\n  - name: f\n    steps:\n      - {{block: a, service: s, "
            f"post_hook: '{HOOKS}:NOT_CALLABLE'}}\n",
            4,
            "flows[0].steps[0].post_hook",
            "is a int, not a callable",
        ),
        (
            f"flows: [{{name: f, steps: [{GOOD_STEP}]}}]\nblocks:\n"
            "  - {name: b, service: s, pre_hook: 'no_such_module_xyz:f'}\n",
            3,
            "blocks[0].pre_hook",
            "cannot import 'no_such_module_xyz'",
        ),
        (
            f"flows: [{{name: f, steps: [{GOOD_STEP}]}}]\ndefault_flow: g\n",
            2,
            "default_flow",
            "no flow 'g' in `flows`",
        ),
        (
            f"flows: [{{name: f, steps: [{GOOD_STEP}]}}]\ndefault_block: a\n",
            2,
            "default_block",
            "no block 'a' in `blocks`",
        ),
        (
            f"flows: [{{name: f, steps: [{GOOD_STEP}]}}]\nservices:\n  - '{HOOKS}:stamp'\n",
            3,
            "services[0]",
            "is not a Service",
        ),
        ("flows:\n  - name: f\n    name: g\n", 3, "flows[0].name", "the key 'name' appears twice"),
        ("- name: f\n", 1, "(document)", "a flow file is a mapping with `flows`"),
        ("", None, "(document)", "a flow file is a mapping with `flows`"),
    ],
)
def test_a_bad_field_is_named_with_its_line(
    text: str, line: int | None, field: str, problem: str
) -> None:
    error = refused(text)
    assert (error.line, error.field) == (line, field), error
    assert problem in error.problem, error
    where = "bad.yaml" if line is None else f"bad.yaml:{line}"
    assert str(error).startswith(f"{where}: {field}: "), error


# -- unsafe or malformed YAML ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("flows: !!python/object/apply:os.system ['true']\n", 1, "tag"),
        ("flows: !custom [a]\n", 1, "the YAML tag '!custom' is not allowed"),
        ("a: &x {b: 1}\nflows: *x\n", 2, "aliases"),
        ("flows: [a, b\n", 2, "not valid YAML"),
        ("flows:\n  - name: f\n   bad indent: 1\n", 3, "not valid YAML"),
        ("---\nflows: []\n---\nflows: []\n", 3, "not valid YAML"),
        ("<<: {flows: []}\n", 1, "tag"),
    ],
)
def test_unsafe_or_malformed_yaml_is_refused(text: str, line: int, problem: str) -> None:
    error = refused(text)
    assert error.line == line, error
    assert problem in error.problem, error


def test_a_python_tag_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = f"!!python/object/apply:pathlib.Path ['{marker}']"
    text = f"flows: !!python/object/apply:pathlib.Path.touch [{path}]\n"
    refused(text)
    assert not marker.exists()


def test_a_file_that_is_not_utf8_is_refused() -> None:
    error = refused(b"flows: \xff\xfe\n")
    assert "not UTF-8" in error.problem


def test_a_huge_text_is_refused_before_parsing() -> None:
    error = refused("#" * (MAX_FLOW_FILE_BYTES + 1))
    assert f"at most {MAX_FLOW_FILE_BYTES}" in error.problem


def test_deep_nesting_is_refused_cleanly() -> None:
    error = refused("flows: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "not valid YAML" in error.problem or "nested too deeply" in error.problem


# -- files -------------------------------------------------------------------------------------
def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"#" * (MAX_FLOW_FILE_BYTES + 1))
    with pytest.raises(FlowFileError, match=r"huge\.yaml: the file is \d+ bytes"):
        load_flow_file(path)


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.yaml: cannot read the file"):
        load_orchestrator(tmp_path / "nope.yaml")


def test_a_bad_second_flow_loads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(f"flows:\n  - {{name: ok, steps: [{GOOD_STEP}]}}\n  - {{name: bad}}\n")
    with pytest.raises(FlowFileError) as caught:
        load_orchestrator(path)
    assert caught.value.source == str(path)
    assert (caught.value.line, caught.value.field) == (3, "flows[1].steps")
