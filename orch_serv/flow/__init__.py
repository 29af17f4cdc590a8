"""Definitions: blocks, flows and the registry of an orchestrator."""

from orch_serv.flow.block import Block
from orch_serv.flow.flow import CompiledStep, Flow, FlowBlock, FlowBuilder
from orch_serv.flow.registry import Definition, FlowRegistry
from orch_serv.flow.spec import FlowSpec, StepSpec

__all__ = [
    "Block",
    "CompiledStep",
    "Definition",
    "Flow",
    "FlowBlock",
    "FlowBuilder",
    "FlowRegistry",
    "FlowSpec",
    "StepSpec",
]
