"""``Stepper``: runs steps one after another, each on the previous step's result."""

from __future__ import annotations

import inspect
import logging
from typing import Any, ClassVar

from orch_serv.exc import ConsistencyStepsException, NoDataForExecutionStepException
from orch_serv.legacy02.logs import DEFAULT_LOGGER
from orch_serv.stepper.builder import StepsBuilder
from orch_serv.stepper.utils import hints


def _signature(step: Any) -> str:
    try:
        return str(inspect.signature(step.obj))
    except (TypeError, ValueError):
        return "(?)"


class Stepper:
    """``Stepper(StepsBuilder(...))`` or a subclass with ``steps = StepsBuilder(...)``.

    ``step_by_step(*args)`` calls the first step with ``args`` and each later step with the
    previous result (a tuple is unpacked). A falsy result raises
    ``NoDataForExecutionStepException`` unless ``is_execute_if_empty``, which skips it and
    forwards the previous data instead."""

    steps: ClassVar[StepsBuilder | None] = None
    is_execute_if_empty: bool = False

    def __init__(
        self,
        steps: StepsBuilder | None = None,
        is_execute_if_empty: bool | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        found = steps if steps is not None else type(self).steps
        if found is None:
            raise NotImplementedError
        if not isinstance(found, StepsBuilder):
            raise TypeError(f"`Stepper.steps` must be a StepsBuilder and not {type(found)} ")
        self._steps = found
        if is_execute_if_empty is not None:
            self.is_execute_if_empty = is_execute_if_empty
        self.logger = logger or DEFAULT_LOGGER

    def step_by_step(self, *args: Any) -> Any:
        """Run every step; returns the last step's result."""
        data: Any = args
        previous_name = "start"
        previous_return: Any = None
        result: Any = None
        for step in self._steps:
            try:
                result = step.execute(data)
            except (TypeError, AttributeError) as exc:
                raise ConsistencyStepsException(
                    step.name,
                    previous_name,
                    _signature(step),
                    str(previous_return),
                    data,
                    step.kwargs,
                ) from exc
            previous_name = step.name
            previous_return = hints(step.obj).get("return")
            if not result:
                if not self.is_execute_if_empty:
                    raise NoDataForExecutionStepException(step.name)
                self.logger.debug("step %s returned no data; forwarding the previous data", step)
                continue
            data = result
        return result


__all__ = ["Stepper"]
