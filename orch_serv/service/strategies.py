"""orch_serv 0.2's handler classes: distinct sync and async strategies.

``ServiceBlock`` accepts them beside the distributed ``CommandHandler`` and
``CommandHandlerPostProcess``, and recognises them: a 0.2 handler receives the user's message
(``process(msg)``) and its post-processor ``post_process(msg, additional_data)``, in process
(``Service.handle``) and when ``orch-serv service`` hosts it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from orch_serv.legacy02.handlers import LegacyHandler


class _Target:
    @property
    def target_command(self) -> str:
        """The command this handler executes (set it as a class attribute)."""
        raise NotImplementedError


class CommandHandlerProcessStrategy(_Target, LegacyHandler, ABC):
    """A synchronous 0.2 handler: set ``target_command``, implement ``process(msg)``
    returning the message, ``(message, additional_data)`` or None."""

    @abstractmethod
    def process(self, msg: Any) -> Any:
        """Execute the command."""


class AsyncCommandHandlerProcessStrategy(_Target, LegacyHandler, ABC):
    """An asynchronous 0.2 handler: ``async def process(msg)``."""

    @abstractmethod
    async def process(self, msg: Any) -> Any:
        """Execute the command."""


class CommandHandlerPostProcessStrategy(LegacyHandler, ABC):
    """A synchronous 0.2 post-processor: ``post_process(msg, additional_data=None)``."""

    @abstractmethod
    def post_process(self, msg: Any, additional_data: Any = None) -> Any:
        """Run after the command's processing."""


class AsyncCommandHandlerPostProcessStrategy(LegacyHandler, ABC):
    """An asynchronous 0.2 post-processor: ``async def post_process(msg, additional_data)``."""

    @abstractmethod
    async def post_process(self, msg: Any, additional_data: Any = None) -> Any:
        """Run after the command's processing."""


class DefaultPostProcessStrategy(CommandHandlerPostProcessStrategy):
    """The no-op post-processor of a synchronous ``Service``."""

    def post_process(self, msg: Any, additional_data: Any = None) -> None:
        """Do nothing."""


class AsyncDefaultPostProcessStrategy(AsyncCommandHandlerPostProcessStrategy):
    """The no-op post-processor of an ``AsyncService``."""

    async def post_process(self, msg: Any, additional_data: Any = None) -> None:
        """Do nothing."""


__all__ = [
    "AsyncCommandHandlerPostProcessStrategy",
    "AsyncCommandHandlerProcessStrategy",
    "AsyncDefaultPostProcessStrategy",
    "CommandHandlerPostProcessStrategy",
    "CommandHandlerProcessStrategy",
    "DefaultPostProcessStrategy",
]
