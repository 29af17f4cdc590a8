"""Status models: declared in Python, checked when built, versioned by what they say."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orch_serv.statusmodel import TWO_POINT_LINE_TASK, Status, StatusModel, StatusType


def _model(*statuses: Status, **kwargs: object) -> StatusModel:
    return StatusModel("M", statuses=list(statuses), **kwargs)


def test_the_default_model_is_statuseks() -> None:
    assert TWO_POINT_LINE_TASK.name == "2-POINT LINE TASK"
    assert [(s.name, s.type, s.after) for s in TWO_POINT_LINE_TASK.statuses] == [
        ("STARTED", StatusType.MANDATORY, ()),
        ("FINISHED", StatusType.MANDATORY, ("STARTED",)),
    ]
    assert TWO_POINT_LINE_TASK.timeout_seconds is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("MANDATORY", StatusType.MANDATORY),
        ("optional", StatusType.OPTIONAL),
        ("STOP", StatusType.STOP),
        ("STOP-STATUS", StatusType.STOP),
        ("stop_status", StatusType.STOP),
    ],
)
def test_status_types_and_the_seed_spelling(given: str, expected: StatusType) -> None:
    assert Status("A", given).type is expected


def test_an_unknown_type_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"unknown status type .FAILED.*STOP-STATUS"):
        Status("A", "FAILED")


def test_a_type_must_be_a_string() -> None:
    with pytest.raises(ValidationError, match="a status type is a string"):
        Status.model_validate({"name": "A", "type": 3})


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        ([Status("A"), Status("A")], "status 'A' is declared twice"),
        ([Status("A", after=["B"])], "status 'A' follows unknown status 'B'"),
        ([Status("A", after=["A"])], "status 'A' follows itself"),
        (
            [Status("A", after=["C"]), Status("B", after=["A"]), Status("C", after=["B"])],
            "cycle",
        ),
    ],
)
def test_bad_graphs_are_refused(statuses: list[Status], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _model(*statuses)


def test_a_model_needs_a_name_and_a_status() -> None:
    with pytest.raises(ValidationError, match="statuses"):
        StatusModel("M", statuses=[])
    with pytest.raises(ValidationError, match="name"):
        StatusModel("", statuses=[Status("A")])
    with pytest.raises(ValidationError, match="leading or trailing"):
        StatusModel(" M", statuses=[Status("A")])
    with pytest.raises(ValidationError, match="leading or trailing"):
        Status(" A")


def test_a_negative_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="timeout_seconds"):
        _model(Status("A"), timeout_seconds=-1)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="colour"):
        StatusModel.model_validate({"name": "M", "statuses": [{"name": "A"}], "colour": "red"})


def test_the_version_hashes_the_definition() -> None:
    one = _model(Status("A"), Status("B", after=["A"]))
    same = _model(Status("A"), Status("B", after="A"))
    other = _model(Status("A"), Status("B", "OPTIONAL", after=["A"]))
    assert one.version == same.version and len(one.version) == 12
    assert one.version != other.version
    assert StatusModel.model_validate_json(one.to_json()) == one


def test_a_stored_version_must_match() -> None:
    data = _model(Status("A")).model_dump()
    data["version"] = "000000000000"
    with pytest.raises(ValidationError, match="does not match"):
        StatusModel.model_validate(data)


def test_what_the_rules_read() -> None:
    model = _model(
        Status("A"),
        Status("B", "OPTIONAL", after=["A"]),
        Status("C", "STOP", after=["A"]),
        Status("D", after=["A", "B"]),
    )
    assert model.mandatory == ("A", "D")
    assert model.successors("A") == ("B", "C", "D")
    assert model.successors("B") == ("D",)
    assert model.status("X") is None
    assert model.status_id("C") == 3 and model.status_id("X") == 0
    assert model.object_id == _model(Status("Z")).object_id  # from the name only
