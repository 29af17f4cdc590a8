"""1.6: ``Step``, ``StepsBuilder`` and ``Stepper``."""

from __future__ import annotations

from typing import Any, List, Optional  # noqa: UP035 - 0.2-era spellings on purpose

import pytest

from orch_serv.exc import (
    ConsistencyStepsException,
    DataConsistencyError,
    EmptyStepper,
    ExtraAttributeError,
    NoDataForExecutionStepException,
)
from orch_serv.stepper import Step, Stepper, StepsBuilder

LOG: list[Any] = []


@pytest.fixture(autouse=True)
def _clear_log() -> None:
    LOG.clear()


def pair(a: int, b: int) -> tuple[int, int]:
    return a + 1, b + 1


def add(a: int, b: int) -> int:
    return a + b


def as_list(a: int) -> list[int]:
    return [a]


def length(items: list[int]) -> int:
    return len(items)


def maybe(a: int) -> Optional[int]:  # noqa: UP045 - the 0.2 spelling
    return a


def inc(a: int) -> int:
    return a + 1


def takes_nothing() -> int:
    return 1


def with_kwargs(a: int, **kwargs: Any) -> int:
    return a + len(kwargs)


def scaled(a: int, factor: int) -> int:
    return a * factor


# -- Step --------------------------------------------------------------------------------------
def test_step_needs_a_callable() -> None:
    with pytest.raises(TypeError) as info:
        Step(1)  # type: ignore[arg-type]
    assert str(info.value) == "Step `obj` must be a callable"


def test_step_extra_kwargs() -> None:
    with pytest.raises(ExtraAttributeError) as info:
        Step(add, a=1, c=2)
    assert info.value.message == (
        "When declaring a step for an object `add` extra attribute(s) were passed `a, c`. "
        "Allowed attribute(s): a ,b"
    )


def test_step_accepts_any_kwargs_with_var_keyword() -> None:
    step = Step(with_kwargs, x=1, y=2)
    assert step.execute(1) == 3


def test_step_properties_and_str() -> None:
    step = Step(scaled, factor=3)
    assert step.obj is scaled and step.kwargs == {"factor": 3}
    assert str(step) == "<Step: obj: scaled; kwargs:{'factor': 3}>"


def test_execute_unpacks_tuples_but_not_lists() -> None:
    assert Step(add).execute((1, 2)) == 3
    assert Step(length).execute([1, 2, 3]) == 3
    assert Step(scaled, factor=2).execute(4) == 8


# -- StepsBuilder ------------------------------------------------------------------------------
def test_builder_needs_steps() -> None:
    with pytest.raises(EmptyStepper) as info:
        StepsBuilder()
    assert info.value.message == "Empty stepper"


def test_builder_rejects_non_steps() -> None:
    with pytest.raises(TypeError) as info:
        StepsBuilder(Step(add), add)  # type: ignore[arg-type]
    assert str(info.value) == "Step must be a Step and not <class 'function'>"


def test_builder_sequence_protocol() -> None:
    steps = [Step(pair), Step(add)]
    builder = StepsBuilder(*steps)
    assert len(builder) == 2
    assert builder[1] is steps[1]
    assert list(builder) == steps == builder.steps


def test_tuple_return_is_checked_per_position() -> None:
    StepsBuilder(Step(pair), Step(add))


def test_type_mismatch() -> None:
    with pytest.raises(DataConsistencyError) as info:
        StepsBuilder(Step(as_list), Step(inc))
    assert info.value.message.startswith("Error during check object `inc`. Error(s):\n ")
    assert "Expected and passed type do not match. Expected `<class 'int'>`" in info.value.message


def test_types_must_be_exactly_equal() -> None:
    def old_style(items: List[int]) -> int:  # noqa: UP006
        return len(items)

    with pytest.raises(DataConsistencyError):
        StepsBuilder(Step(as_list), Step(old_style))


def test_missing_value_for_a_parameter() -> None:
    with pytest.raises(DataConsistencyError) as info:
        StepsBuilder(Step(inc), Step(scaled))
    assert (
        "No value for variable `factor`. Provide a default value or pass a value when "
        "initializing the step" in info.value.message
    )
    StepsBuilder(Step(inc), Step(scaled, factor=2))


def test_optional_return_against_non_optional_parameter() -> None:
    StepsBuilder(Step(maybe), Step(inc))


def test_unannotated_parameter_warns() -> None:
    def loose(a):  # type: ignore[no-untyped-def]
        return a

    with pytest.warns(UserWarning, match="not annotated"):
        StepsBuilder(Step(inc), Step(loose))


def test_validation_can_be_turned_off() -> None:
    StepsBuilder(Step(as_list), Step(inc), is_validate_consistency_steps=False)


# -- Stepper -----------------------------------------------------------------------------------
def test_stepper_needs_steps() -> None:
    with pytest.raises(NotImplementedError):
        Stepper()
    with pytest.raises(TypeError) as info:
        Stepper(steps=[Step(inc)])  # type: ignore[arg-type]
    assert str(info.value) == "`Stepper.steps` must be a StepsBuilder and not <class 'list'> "


def test_step_by_step() -> None:
    assert Stepper(StepsBuilder(Step(pair), Step(add), Step(inc))).step_by_step(1, 2) == 6


def test_steps_class_attribute() -> None:
    class Doubler(Stepper):
        steps = StepsBuilder(Step(scaled, factor=2), Step(inc))

    assert Doubler().step_by_step(5) == 11


def count(a: int) -> int:
    LOG.append(1)
    return 0 if a == 0 else a


def zero(a: int) -> int:
    LOG.append(2)
    return 0


def test_falsy_result_raises() -> None:
    with pytest.raises(NoDataForExecutionStepException) as info:
        Stepper(StepsBuilder(Step(inc), Step(zero), Step(inc))).step_by_step(1)
    assert info.value.message == (
        "Object run step `zero` didn't return data. Check object logic or change settings "
        "Stepper.is_execute_if_empty = True."
    )


def test_execute_if_empty_forwards_the_previous_data() -> None:
    stepper = Stepper(
        StepsBuilder(Step(count), Step(zero), Step(count), Step(zero), Step(zero)),
        is_execute_if_empty=True,
    )
    assert stepper.step_by_step(3) == 0  # the last result, falsy
    assert LOG == [1, 2, 1, 2, 2]


def test_execute_if_empty_class_attribute() -> None:
    class Lenient(Stepper):
        steps = StepsBuilder(Step(inc), Step(zero), Step(inc))
        is_execute_if_empty = True

    assert Lenient().step_by_step(1) == 3


def test_type_error_in_a_step_is_wrapped() -> None:
    stepper = Stepper(StepsBuilder(Step(inc), Step(takes_nothing)))
    with pytest.raises(ConsistencyStepsException) as info:
        stepper.step_by_step(1)
    assert isinstance(info.value.__cause__, TypeError)
    text = info.value.message
    assert "`takes_nothing`" in text and "`inc`" in text and "received data: 2" in text


def test_first_step_error_names_start() -> None:
    def broken(a: int) -> int:
        raise AttributeError("nope")

    with pytest.raises(ConsistencyStepsException, match="previous step `start`"):
        Stepper(StepsBuilder(Step(broken))).step_by_step(1)


def test_other_exceptions_propagate_unchanged() -> None:
    def fails(a: int) -> int:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        Stepper(StepsBuilder(Step(fails))).step_by_step(1)


def test_surplus_returned_values_are_not_checked() -> None:
    def three(a: int) -> tuple[int, str, bytes]:
        return a, "x", b"y"

    StepsBuilder(Step(three), Step(inc))  # only the first position is compared


def test_stepper_logger() -> None:
    import logging

    logger = logging.getLogger("stepper")
    assert Stepper(StepsBuilder(Step(inc)), logger=logger).logger is logger
