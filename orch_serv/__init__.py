"""orch_serv: an asyncio, message-driven orchestrator for Python microservices."""

from orch_serv.constants import EventKind, EventStatus, MessageKind, RunState
from orch_serv.exceptions import (
    ConfigurationError,
    DeadLetterNotFound,
    FlowNotFound,
    HandlerError,
    IdempotencyConflict,
    InvalidRunState,
    MessageTooLarge,
    NamespaceConflict,
    NonRetryableError,
    OrchServError,
    PublishError,
    RetryAfter,
    RunNotFound,
    StoreError,
    TransportError,
)
from orch_serv.flow import Block, Flow, FlowBlock, FlowBuilder, FlowSpec
from orch_serv.flow.groups import Map, Parallel
from orch_serv.flow.policy import RetryPolicy, Timeouts
from orch_serv.flow.waits import WaitForChart, WaitForSignal
from orch_serv.messages import Envelope, ErrorInfo, StatusInfo
from orch_serv.msg import BaseOrchServMsg
from orch_serv.orchestrator import (
    AsyncBlock,
    AsyncFlow,
    AsyncOrchestrator,
    Client,
    Orchestrator,
    Running,
    SyncBlock,
    SyncFlow,
    SyncOrchestrator,
)
from orch_serv.service import (
    AsyncCommandHandlerPostProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
    AsyncService,
    CommandHandler,
    CommandHandlerPostProcess,
    CommandHandlerPostProcessStrategy,
    CommandHandlerProcessStrategy,
    HandlerContext,
    Service,
    ServiceBlock,
    ServiceBuilder,
)
from orch_serv.settings import Settings
from orch_serv.stepper import Step, Stepper, StepsBuilder
from orch_serv.store import Event, RunRecord

__version__ = "0.1.0"

__all__ = [
    "AsyncBlock",
    "AsyncCommandHandlerPostProcessStrategy",
    "AsyncCommandHandlerProcessStrategy",
    "AsyncFlow",
    "AsyncOrchestrator",
    "AsyncService",
    "BaseOrchServMsg",
    "Block",
    "Client",
    "CommandHandler",
    "CommandHandlerPostProcess",
    "CommandHandlerPostProcessStrategy",
    "CommandHandlerProcessStrategy",
    "ConfigurationError",
    "DeadLetterNotFound",
    "Envelope",
    "ErrorInfo",
    "Event",
    "EventKind",
    "EventStatus",
    "Flow",
    "FlowBlock",
    "FlowBuilder",
    "FlowNotFound",
    "FlowSpec",
    "HandlerContext",
    "HandlerError",
    "IdempotencyConflict",
    "InvalidRunState",
    "Map",
    "MessageKind",
    "MessageTooLarge",
    "NamespaceConflict",
    "NonRetryableError",
    "OrchServError",
    "Orchestrator",
    "Parallel",
    "PublishError",
    "RetryAfter",
    "RetryPolicy",
    "RunNotFound",
    "RunRecord",
    "RunState",
    "Running",
    "Service",
    "ServiceBlock",
    "ServiceBuilder",
    "Settings",
    "StatusInfo",
    "Step",
    "Stepper",
    "StepsBuilder",
    "StoreError",
    "SyncBlock",
    "SyncFlow",
    "SyncOrchestrator",
    "Timeouts",
    "TransportError",
    "WaitForChart",
    "WaitForSignal",
    "__version__",
]
