"""``StepsBuilder``: the ordered steps of a stepper, checked against each other."""

from __future__ import annotations

from collections.abc import Iterator

from orch_serv.exc import DataConsistencyError, EmptyStepper
from orch_serv.stepper.step import Step
from orch_serv.stepper.utils import check_step, returned_types


class StepsBuilder:
    """``StepsBuilder(Step(a), Step(b), ...)``. With ``is_validate_consistency_steps`` (the
    default) each step's annotated parameters must equal (``==``) the types the previous step
    is annotated to return, and parameters beyond those must have a value."""

    def __init__(self, *steps: Step, is_validate_consistency_steps: bool = True) -> None:
        if not steps:
            raise EmptyStepper()
        for step in steps:
            if not isinstance(step, Step):
                raise TypeError(f"Step must be a Step and not {type(step)}")
        self.steps: list[Step] = list(steps)
        if is_validate_consistency_steps:
            self._validate()

    def _validate(self) -> None:
        for previous, step in zip(self.steps, self.steps[1:], strict=False):
            given = returned_types(previous.obj)
            if given is None:
                continue
            errors = check_step(step.obj, step.kwargs, given)
            if errors:
                raise DataConsistencyError(f" `{step.name}`", errors)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: int) -> Step:
        return self.steps[index]

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)


__all__ = ["StepsBuilder"]
