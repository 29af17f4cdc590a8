"""Status models from YAML: the three shapes of a file, and every mistake named by file and
field."""

from __future__ import annotations

from pathlib import Path

import pytest

from orch_serv.statusmodel import StatusModelError, StatusType, load_models, loads_models

ORDER = """
name: ORDER
timeout_seconds: 600
statuses:
  - {name: ACCEPTED, type: MANDATORY}
  - {name: PACKED, type: OPTIONAL, after: [ACCEPTED]}
  - {name: CANCELLED, type: STOP-STATUS, after: [ACCEPTED]}
  - {name: SHIPPED, after: [ACCEPTED], description: On its way}
"""


def test_one_model_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "order.yaml"
    path.write_text(ORDER)
    (model,) = load_models(path)
    assert model.name == "ORDER" and model.timeout_seconds == 600
    assert [s.type for s in model.statuses] == [
        StatusType.MANDATORY,
        StatusType.OPTIONAL,
        StatusType.STOP,
        StatusType.MANDATORY,
    ]
    assert model.statuses[3].description == "On its way"


def test_a_list_and_a_models_key() -> None:
    listed = loads_models("- {name: A, statuses: [{name: X}]}\n- {name: B, statuses: [{name: Y}]}")
    keyed = loads_models("models:\n  - {name: A, statuses: [{name: X}]}")
    assert [m.name for m in listed] == ["A", "B"] and [m.name for m in keyed] == ["A"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: A\nstatuses: [{name: X, type: WEIRD}]", "f.yaml: statuses[0].type: unknown"),
        ("name: A\nstatuses: [{name: X, after: [Y]}]", "f.yaml: model: status 'X' follows"),
        ("name: A\nstatuses: []", "f.yaml: statuses: Tuple should have at least 1 item"),
        ("statuses: [{name: X}]", "f.yaml: name: Field required"),
        ("name: A\nstatuses: [{name: X}]\ntimeout_seconds: -1", "f.yaml: timeout_seconds"),
        ("name: A\nstatuses: [{name: X, colour: red}]", "f.yaml: statuses[0].colour"),
        ("- {name: A, statuses: [{name: X, type: 1}]}", "f.yaml: [0].statuses[0].type"),
        ("models:\n  - {name: A, statuses: [{nam: X}]}", "f.yaml: models[0].statuses[0]"),
        ("- 3", "f.yaml: [0]: expected a mapping"),
        ("just text", "f.yaml: expected a status model"),
        ("", "f.yaml: expected a status model"),
        ("models: []", "f.yaml: models: expected a non-empty list"),
        ("name: A\nstatuses: [{name: X}\n", "f.yaml: not valid YAML"),
        (
            "- {name: A, statuses: [{name: X}]}\n- {name: A, statuses: [{name: Y}]}",
            "f.yaml: model 'A' is defined twice",
        ),
    ],
)
def test_every_mistake_names_the_file_and_field(text: str, message: str) -> None:
    with pytest.raises(StatusModelError) as caught:
        loads_models(text, "f.yaml")
    assert message in caught.value.message


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StatusModelError, match=r"missing\.yaml: cannot read"):
        load_models(tmp_path / "missing.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(StatusModelError, match=r"bin\.yaml: cannot read"):
        load_models(binary)


def test_yaml_tags_are_not_executed() -> None:
    with pytest.raises(StatusModelError, match="not valid YAML"):
        loads_models("!!python/object/apply:os.system ['true']", "f.yaml")
