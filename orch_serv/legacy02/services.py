"""orch_serv 0.2's service behaviour: building the commands of a ``ServiceBuilder`` for one
service, and ``Service.handle`` / ``AsyncService.handle`` in process.

Fixed against 0.2: each service instance gets copies of the builder's handlers (0.2 bound the
class-level instances to whichever service was built last); ``IncorrectDefaultCommand`` names
the command (0.2 printed ``None``); a ``process`` returning the message itself is not unpacked
(see :mod:`orch_serv.legacy02.service_specs`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from orch_serv.exc import NotUniqueCommandError
from orch_serv.legacy02.handlers import LegacyHandler
from orch_serv.legacy02.service_specs import split


class ServiceCommand(BaseModel):
    """A command's processor and post-processor, as a 0.2 service holds them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    processor: Any
    post_processor: Any = None


def build_commands(
    blocks: Any,
    default_post: Any,
    service: Any,
    logger: logging.Logger | None,
    *,
    own_copies: bool = True,
) -> dict[str, ServiceCommand]:
    """``{command: ServiceCommand}`` with the handlers' logger and service set; a block
    without a post-processor gets ``default_post``. With ``own_copies`` the service gets
    copies of the builder's handlers (a builder declared on a class is shared by every
    instance of it)."""

    def own(handler: Any) -> Any:
        return copy.copy(handler) if own_copies else handler

    commands: dict[str, ServiceCommand] = {}
    shared_default = None if default_post is None else own(default_post)
    for block in blocks:
        processor = own(block.processor)
        post = own(block.post_processor) if block.post_processor else shared_default
        for handler in (processor, post):
            if isinstance(handler, LegacyHandler):
                handler.set_logger(logger)
                handler.set_service_instance(service)
        if block.command in commands:
            raise NotUniqueCommandError(block.command)
        commands[block.command] = ServiceCommand(processor=processor, post_processor=post)
    return commands


def check_modes(commands: dict[str, ServiceCommand], process_cls: type, post_cls: type) -> None:
    """A ``Service`` takes sync handlers only, an ``AsyncService`` async ones only."""
    for name, command in commands.items():
        for role, obj, cls in (
            ("processor", command.processor, process_cls),
            ("post_processor", command.post_processor, post_cls),
        ):
            if obj is not None and not isinstance(obj, cls):
                raise TypeError(
                    f"Incorrect type `{role}` of command `{name}`. Must be a `{cls.__name__}` "
                    f"and not `{type(obj).__name__}`"
                )


class LegacyServiceMixin:
    """``handle`` and the swap scope of a service used the 0.2 way."""

    logger: logging.Logger
    is_catch_exceptions: bool
    swap_scope: dict[str, Any]
    default_command: str | None
    _commands: dict[str, ServiceCommand]

    def _lookup(self, message: Any) -> ServiceCommand | None:
        command = message.get_command()
        found = self._commands.get(command) if command else None
        if found is None and self.default_command is not None:
            found = self._commands.get(self.default_command)
        if found is None:
            self.logger.warning("Not found command to process message %r", message)
        return found

    def _failed(self, message: Any) -> Any:
        self.logger.warning("Error while processing message %r", message, exc_info=True)
        return message

    def handle(self, message: Any, is_force_return: bool = False) -> Any:
        """Run the message's command (``get_command()``, else the default command) and its
        post-processor: None on success (the message with ``is_force_return``); the message
        when no command matches or processing raised (re-raised when
        ``is_catch_exceptions`` is False)."""
        handler = self._lookup(message)
        if handler is None:
            return message
        try:
            resp = handler.processor.process(message)
            msg, extra = split(resp)
            if msg and handler.post_processor is not None:
                handler.post_processor.post_process(msg, extra)
        except Exception:
            if not self.is_catch_exceptions:
                raise
            return self._failed(message)
        return message if is_force_return else None


class AsyncLegacyServiceMixin(LegacyServiceMixin):
    """``await handle(message)`` for an ``AsyncService``."""

    async def handle(self, message: Any, is_force_return: bool = False) -> Any:
        """The async form of :meth:`LegacyServiceMixin.handle`."""
        handler = self._lookup(message)
        if handler is None:
            return message
        try:
            resp = await handler.processor.process(message)
            msg, extra = split(resp)
            if msg and handler.post_processor is not None:
                await handler.post_processor.post_process(msg, extra)
        except Exception:
            if not self.is_catch_exceptions:
                raise
            return self._failed(message)
        return message if is_force_return else None


__all__ = [
    "AsyncLegacyServiceMixin",
    "LegacyServiceMixin",
    "ServiceCommand",
    "build_commands",
    "check_modes",
]
