"""The published JSON Schema of flow files (docs/flow.schema.json) stays equal to what
``python -m orch_serv.flow.yamlflows.schema`` prints, accepts the example flow files and the
examples of docs/flows-yaml.md, and refuses what the loader refuses for its shape; the examples
of the doc load."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from orch_serv.flow.yamlflows import FlowFileError, parse_flow_file
from orch_serv.flow.yamlflows.schema import SCHEMA_DIALECT, flow_file_json_schema, render_schema
from tests.unit import yaml_flows_hooks as hooks

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "docs" / "flow.schema.json"
DOC = ROOT / "docs" / "flows-yaml.md"
MODELINE = "# yaml-language-server: $schema=../docs/flow.schema.json"


def validator() -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def doc_examples() -> list[str]:
    """The YAML blocks of docs/flows-yaml.md that are flow files."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [b for b in blocks if "flows:" in b]


def test_the_published_schema_is_the_generated_one() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == render_schema() + "\n"


def test_the_schema_module_prints_it() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "orch_serv.flow.yamlflows.schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == SCHEMA.read_text(encoding="utf-8")


def test_the_schema_is_draft_2020_12_and_closed() -> None:
    schema = flow_file_json_schema()
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["required"] == ["flows"]
    assert schema["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        assert definition["additionalProperties"] is False, name


@pytest.mark.parametrize("path", sorted((ROOT / "flows").glob("*.yaml")), ids=lambda p: p.name)
def test_the_example_flow_files_are_valid_and_carry_the_modeline(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(MODELINE + "\n")
    assert validator().is_valid(yaml.safe_load(text))


def test_the_doc_examples_are_valid_and_load(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = doc_examples()
    assert len(examples) >= 2
    # the doc's hooks live in an imaginary `myapp`: stand in the test's own
    fakes = {"myapp.hooks:stamp": hooks.stamp, "myapp.hooks:audit": hooks.audit}
    for text in examples:
        assert validator().is_valid(yaml.safe_load(text)), text
        loaded = parse_flow_file(text, "doc", importer=fakes.__getitem__)
        assert loaded.flows


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"flows": []},
        {"flows": [{"name": "f"}]},
        {"flows": [{"name": "f", "steps": [{"block": "a", "servise": "s"}]}]},
        {"flows": [{"name": "no spaces", "steps": [{"block": "a"}]}]},
        {"flows": [{"name": "f", "steps": [{"block": "a", "pre_hook": "nope"}]}]},
        {"flows": [{"name": "f", "deadline": 0, "steps": [{"block": "a"}]}]},
        {"flows": [{"name": "f", "steps": [{"block": "a", "retry": {"max_attempts": "3"}}]}]},
        {"flows": [{"name": "f", "steps": [{"block": "a", "wait_for": "chart"}]}]},
        {"flows": [{"name": "f", "steps": [{"block": "a"}]}], "extra": 1},
    ],
)
def test_the_schema_and_the_loader_both_refuse_a_bad_shape(data: dict[str, Any]) -> None:
    assert not validator().is_valid(data)
    with pytest.raises(FlowFileError):
        parse_flow_file(yaml.safe_dump(data), "bad.yaml")
