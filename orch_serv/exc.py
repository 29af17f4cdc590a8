"""orch_serv 0.2's exceptions, at their 0.2 path, with their 0.2 constructors and texts.

Every class here is rooted at :class:`orch_serv.exceptions.OrchServError` (the same class as
``orch_serv.exc.OrchServError``), and a 0.2 exception whose name the distributed model also
uses subclasses that class, so ``except orch_serv.exceptions.FlowBlockException`` catches the
0.2 one too. Each exception keeps its text in ``.message``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orch_serv import exceptions as _x

OrchServError = _x.OrchServError
MsgException = _x.MsgException
OrchestratorException = _x.OrchestratorException
ServiceException = _x.ServiceException


# -- orchestrator ---------------------------------------------------------------------------------
class FlowException(_x.FlowException):
    """The chain of a flow ended without a block for the message's source."""

    def __init__(self, message: str = "") -> None:
        super().__init__(f"The flow chain ended without finding a single handler: {message}")


class FlowBlockException(_x.FlowBlockException):
    """A ``FlowBlock`` was given something that is not a block."""

    def __init__(self, type_block: str = "") -> None:
        super().__init__(
            "Incorrect type block handler. The block must inherit from the class 'Block', "
            f"and not : {type_block}"
        )


class FlowBuilderException(_x.FlowBuilderException):
    """A ``FlowBuilder`` argument is not a ``FlowBlock``; built from ``"on index N"``."""

    def __init__(self, message: str = "") -> None:
        super().__init__(f"Incorrect type in builder arguments {message}")


class UniqueNameException(_x.UniqueNameException):
    """Two flows (or blocks) of one orchestrator share an identifier."""

    def __init__(self, name: str, type_data: str = "flow") -> None:
        super().__init__(
            f"The {type_data} name `{name}` is not unique to this orchestrator_service"
        )


class NoDateException(_x.NoDateException):
    """No flows (or blocks), or no data at all, for an orchestrator (0.2's name)."""

    def __init__(self, type_data: str | None = None) -> None:
        if type_data:
            super().__init__(f"No {type_data}s for processing")
        else:
            super().__init__("There is no data for the orchestrator to work correctly")


class WrongTypeException(_x.WrongTypeException):
    """Flows or blocks given in a container that is neither a list nor a module."""

    def __init__(self, type_data: str, type_value: str) -> None:
        super().__init__(
            f"Invalid variable type `{type_data}`. There {type_data} should be a list "
            f"and not `{type_value}`"
        )


class WorkTypeMismatchException(OrchestratorException):
    """Sync and async work mixed: a sync block in an async flow, an async flow in a sync
    orchestrator, or the reverse."""

    def __init__(self, where: str, owner: str, mode_class: str) -> None:
        super().__init__(
            f"In {where} use incorrect mode class.For {owner} use {mode_class}. "
            "Different types of work (sync and async or vice versa)"
        )


class NotFoundDefaultError(_x.NotFoundDefaultError):
    """``default_flow`` / ``default_block`` names nothing that is registered."""

    def __init__(self, value: object, type_data: str, allowed: Iterable[str]) -> None:
        super().__init__(
            f"Not exist default value {value} for {type_data}.Allowed values: {list(allowed)}"
        )


class NotUniqueBlockInFlowError(_x.NotUniqueBlockInFlowError):
    """Two blocks of one flow share a ``name_block``."""

    def __init__(self, block: str, flow: str) -> None:
        super().__init__(
            f"Not unique block {block} in flow {flow}.Check your flow or set flow "
            "`variable is_contains_duplicat_blocks` as True"
        )


# -- service --------------------------------------------------------------------------------------
class ServiceBlockException(_x.ServiceBlockException):
    """A ``ServiceBlock`` (or a builder's default post-processor) has the wrong type."""


class DoublePostProcessFunctionDeclaredError(_x.DoublePostProcessFunctionDeclaredError):
    """A default post-processor was given twice."""

    def __init__(self, message: str = "Several postprocessors specified") -> None:
        super().__init__(message)


class EmptyCommandsException(_x.EmptyCommandsException):
    """A ``ServiceBuilder`` without any ``ServiceBlock``."""

    def __init__(self, message: str = "Empty list of commands for service operation") -> None:
        super().__init__(message)


class NotUniqueCommandError(_x.NotUniqueCommandError):
    """Two handlers of one service declare the same ``target_command``."""

    def __init__(self, command: str) -> None:
        super().__init__(f"Command `{command}` is not unique for current service")


class ServiceBuilderException(ServiceException):
    """``service_commands`` is not a ``ServiceBuilder``."""

    def __init__(self, type_builder: object) -> None:
        super().__init__(
            f"Variable `service_builder` must be a ServiceBuilder and not {type_builder}"
        )


class IncorrectDefaultCommand(_x.IncorrectDefaultCommand):
    """``default_command`` is not a command of the service (0.2 printed ``None`` here)."""

    def __init__(self, command: object, allowed: Iterable[str]) -> None:
        super().__init__(
            f"The `{command}` command which is the default command is not among the valid "
            f"commands : {list(allowed)}"
        )


# -- stepper --------------------------------------------------------------------------------------
class StepperException(OrchServError):
    """Errors of :mod:`orch_serv.stepper`."""


class NoDataForExecutionStepException(StepperException):
    """A step returned a falsy value and the stepper does not skip empty results."""

    def __init__(self, step_name: str) -> None:
        super().__init__(
            f"Object run step `{step_name}` didn't return data. Check object logic or change "
            "settings Stepper.is_execute_if_empty = True."
        )


class ConsistencyStepsException(StepperException):
    """A step raised ``TypeError``/``AttributeError``: the steps do not fit together."""

    def __init__(
        self,
        step: str,
        previous_step: str,
        signature: str,
        previous_return: str,
        received: Any,
        kwargs: dict[str, Any],
    ) -> None:
        super().__init__(
            f"Error while executing step `{step}` (previous step `{previous_step}`). "
            f"Signature of the step: {signature}; return annotation of the previous step: "
            f"{previous_return}; received data: {received!r}; kwargs given at init: {kwargs}"
        )


class DataConsistencyError(StepperException):
    """The declared types of consecutive steps do not fit."""

    def __init__(self, name: str, errors: Iterable[str]) -> None:
        listing = "\n ".join(errors)
        super().__init__(f"Error during check object{name}. Error(s):\n {listing}")


class ExtraAttributeError(StepperException):
    """A ``Step`` got keyword arguments its callable does not take."""

    def __init__(self, obj_name: str, kwargs: Iterable[str], allowed: Iterable[str]) -> None:
        super().__init__(
            f"When declaring a step for an object `{obj_name}` extra attribute(s) were passed "
            f"`{', '.join(kwargs)}`. Allowed attribute(s): {' ,'.join(allowed)}"
        )


class EmptyStepper(StepperException):
    """A ``StepsBuilder`` without steps."""

    def __init__(self, message: str = "Empty stepper") -> None:
        super().__init__(message)


__all__ = [
    "ConsistencyStepsException",
    "DataConsistencyError",
    "DoublePostProcessFunctionDeclaredError",
    "EmptyCommandsException",
    "EmptyStepper",
    "ExtraAttributeError",
    "FlowBlockException",
    "FlowBuilderException",
    "FlowException",
    "IncorrectDefaultCommand",
    "MsgException",
    "NoDataForExecutionStepException",
    "NoDateException",
    "NotFoundDefaultError",
    "NotUniqueBlockInFlowError",
    "NotUniqueCommandError",
    "OrchServError",
    "OrchestratorException",
    "ServiceBlockException",
    "ServiceBuilderException",
    "ServiceException",
    "StepperException",
    "UniqueNameException",
    "WorkTypeMismatchException",
    "WrongTypeException",
]
