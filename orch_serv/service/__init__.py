"""The service runtime: command handlers, their context, and the worker that hosts them."""

from orch_serv.service.context import HandlerContext
from orch_serv.service.definition import Service, as_services
from orch_serv.service.handler import (
    AsyncCommandHandlerPostProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
    CommandHandler,
    CommandHandlerPostProcess,
    CommandHandlerPostProcessStrategy,
    CommandHandlerProcessStrategy,
    ServiceBlock,
    ServiceBuilder,
)
from orch_serv.service.worker import ServiceWorker

__all__ = [
    "AsyncCommandHandlerPostProcessStrategy",
    "AsyncCommandHandlerProcessStrategy",
    "CommandHandler",
    "CommandHandlerPostProcess",
    "CommandHandlerPostProcessStrategy",
    "CommandHandlerProcessStrategy",
    "HandlerContext",
    "Service",
    "ServiceBlock",
    "ServiceBuilder",
    "ServiceWorker",
    "as_services",
]
