"""The service runtime: command handlers, their context, and the worker that hosts them;
and orch_serv 0.2's services (``Service``/``AsyncService`` used without a name)."""

from orch_serv.legacy02.services import ServiceCommand
from orch_serv.service.context import HandlerContext
from orch_serv.service.definition import AsyncService, Service, as_services
from orch_serv.service.handler import (
    CommandHandler,
    CommandHandlerPostProcess,
    ServiceBlock,
    ServiceBuilder,
)
from orch_serv.service.strategies import (
    AsyncCommandHandlerPostProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
    AsyncDefaultPostProcessStrategy,
    CommandHandlerPostProcessStrategy,
    CommandHandlerProcessStrategy,
    DefaultPostProcessStrategy,
)
from orch_serv.service.worker import ServiceWorker

__all__ = [
    "AsyncCommandHandlerPostProcessStrategy",
    "AsyncCommandHandlerProcessStrategy",
    "AsyncDefaultPostProcessStrategy",
    "AsyncService",
    "CommandHandler",
    "CommandHandlerPostProcess",
    "CommandHandlerPostProcessStrategy",
    "CommandHandlerProcessStrategy",
    "DefaultPostProcessStrategy",
    "HandlerContext",
    "Service",
    "ServiceBlock",
    "ServiceBuilder",
    "ServiceCommand",
    "ServiceWorker",
    "as_services",
]
