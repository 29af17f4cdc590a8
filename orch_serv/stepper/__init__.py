"""orch_serv 0.2's stepper: a sequence of steps, each fed the previous step's result."""

from orch_serv.stepper.builder import StepsBuilder
from orch_serv.stepper.step import Step
from orch_serv.stepper.stepper import Stepper

__all__ = ["Step", "Stepper", "StepsBuilder"]
