"""1.7: the 0.2 exception hierarchy at ``orch_serv.exc``, constructors and texts."""

from __future__ import annotations

import pytest

from orch_serv import exc, exceptions


@pytest.mark.parametrize(
    ("error", "parent"),
    [
        (exc.MsgException, exc.OrchServError),
        (exc.OrchestratorException, exc.OrchServError),
        (exc.ServiceException, exc.OrchServError),
        (exc.StepperException, exc.OrchServError),
        (exc.FlowException, exc.OrchestratorException),
        (exc.FlowBlockException, exc.OrchestratorException),
        (exc.FlowBuilderException, exc.OrchestratorException),
        (exc.UniqueNameException, exc.OrchestratorException),
        (exc.NoDateException, exc.OrchestratorException),
        (exc.WrongTypeException, exc.OrchestratorException),
        (exc.WorkTypeMismatchException, exc.OrchestratorException),
        (exc.NotFoundDefaultError, exc.OrchestratorException),
        (exc.NotUniqueBlockInFlowError, exc.OrchestratorException),
        (exc.ServiceBlockException, exc.ServiceException),
        (exc.DoublePostProcessFunctionDeclaredError, exc.ServiceException),
        (exc.EmptyCommandsException, exc.ServiceException),
        (exc.NotUniqueCommandError, exc.ServiceException),
        (exc.ServiceBuilderException, exc.ServiceException),
        (exc.IncorrectDefaultCommand, exc.ServiceException),
        (exc.NoDataForExecutionStepException, exc.StepperException),
        (exc.ConsistencyStepsException, exc.StepperException),
        (exc.DataConsistencyError, exc.StepperException),
        (exc.ExtraAttributeError, exc.StepperException),
        (exc.EmptyStepper, exc.StepperException),
    ],
)
def test_hierarchy(error: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(error, parent)
    assert issubclass(error, exc.OrchServError)


def test_root_is_the_distributed_root() -> None:
    assert exc.OrchServError is exceptions.OrchServError


@pytest.mark.parametrize(
    "name",
    [
        "FlowException",
        "FlowBlockException",
        "FlowBuilderException",
        "UniqueNameException",
        "NoDateException",
        "WrongTypeException",
        "NotFoundDefaultError",
        "NotUniqueBlockInFlowError",
        "ServiceBlockException",
        "DoublePostProcessFunctionDeclaredError",
        "EmptyCommandsException",
        "NotUniqueCommandError",
        "IncorrectDefaultCommand",
    ],
)
def test_shared_names_are_caught_by_the_distributed_class(name: str) -> None:
    assert issubclass(getattr(exc, name), getattr(exceptions, name))


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            exc.FlowException("Not found block for source: x"),
            "The flow chain ended without finding a single handler: Not found block for source: x",
        ),
        (
            exc.FlowBlockException("<class 'int'>"),
            "Incorrect type block handler. The block must inherit from the class 'Block', "
            "and not : <class 'int'>",
        ),
        (exc.FlowBuilderException("on index 3"), "Incorrect type in builder arguments on index 3"),
        (
            exc.UniqueNameException("x", "flow"),
            "The flow name `x` is not unique to this orchestrator_service",
        ),
        (exc.NoDateException("flow"), "No flows for processing"),
        (exc.NoDateException(), "There is no data for the orchestrator to work correctly"),
        (
            exc.WrongTypeException("block", "<class 'tuple'>"),
            "Invalid variable type `block`. There block should be a list and not `<class 'tuple'>`",
        ),
        (
            exc.WorkTypeMismatchException("targets", "SyncOrchestrator", "SyncBlock"),
            "In targets use incorrect mode class.For SyncOrchestrator use SyncBlock. "
            "Different types of work (sync and async or vice versa)",
        ),
        (
            exc.NotFoundDefaultError("test", "flows", ["a"]),
            "Not exist default value test for flows.Allowed values: ['a']",
        ),
        (
            exc.NotUniqueBlockInFlowError("b", "f"),
            "Not unique block b in flow f.Check your flow or set flow "
            "`variable is_contains_duplicat_blocks` as True",
        ),
        (exc.DoublePostProcessFunctionDeclaredError(), "Several postprocessors specified"),
        (exc.EmptyCommandsException(), "Empty list of commands for service operation"),
        (exc.NotUniqueCommandError("X"), "Command `X` is not unique for current service"),
        (
            exc.ServiceBuilderException(list),
            "Variable `service_builder` must be a ServiceBuilder and not <class 'list'>",
        ),
        (
            exc.IncorrectDefaultCommand("q", ["p"]),
            "The `q` command which is the default command is not among the valid commands : ['p']",
        ),
        (
            exc.NoDataForExecutionStepException("f"),
            "Object run step `f` didn't return data. Check object logic or change settings "
            "Stepper.is_execute_if_empty = True.",
        ),
        (
            exc.DataConsistencyError(" `f`", ["e1", "e2"]),
            "Error during check object `f`. Error(s):\n e1\n e2",
        ),
        (
            exc.ExtraAttributeError("f", ["x"], ["a", "b"]),
            "When declaring a step for an object `f` extra attribute(s) were passed `x`. "
            "Allowed attribute(s): a ,b",
        ),
        (exc.EmptyStepper(), "Empty stepper"),
    ],
)
def test_messages(error: exc.OrchServError, text: str) -> None:
    assert error.message == text
    assert str(error) == text


def test_consistency_steps_message_covers_the_context() -> None:
    error = exc.ConsistencyStepsException("g", "f", "(a: int)", "int", (1,), {"k": 2})
    for part in ("`g`", "`f`", "(a: int)", "int", "(1,)", "{'k': 2}"):
        assert part in error.message
