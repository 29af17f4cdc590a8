"""``Service``: a named set of command handlers that one kind of worker process hosts, or,
used the orch_serv 0.2 way (no name), a service whose ``handle(message)`` runs in process.

* ``Service("validator", ...)``: the distributed service (handlers get the body and
  optionally a :class:`HandlerContext`).
* ``Service()`` / ``Service(service_commands=...)`` / a subclass with ``service_commands``:
  orch_serv 0.2's service (``handle``, swap scope, ``is_catch_exceptions``, sync handlers
  only; :class:`AsyncService` for async ones). It is named after its class (or a
  ``service_name`` class attribute) when ``orch-serv service`` hosts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from orch_serv.exc import IncorrectDefaultCommand as LegacyIncorrectDefaultCommand
from orch_serv.exc import ServiceBuilderException
from orch_serv.exceptions import (
    EmptyCommandsException,
    IncorrectDefaultCommand,
    NotUniqueCommandError,
    OrchServError,
    ServiceBlockException,
)
from orch_serv.flow.block import check_name
from orch_serv.flow.waits import WAITS_SERVICE
from orch_serv.legacy02.logs import DEFAULT_LOGGER
from orch_serv.legacy02.services import (
    AsyncLegacyServiceMixin,
    LegacyServiceMixin,
    ServiceCommand,
    build_commands,
    check_modes,
)
from orch_serv.service.handler import (
    CommandHandler,
    HandlerFn,
    HandlerSpec,
    ServiceBlock,
    ServiceBuilder,
    describe,
    handler_spec,
)
from orch_serv.service.strategies import (
    AsyncCommandHandlerPostProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
    AsyncDefaultPostProcessStrategy,
    CommandHandlerPostProcessStrategy,
    CommandHandlerProcessStrategy,
    DefaultPostProcessStrategy,
)


def _legacy_args(
    first: Any, second: Any, third: Any, fourth: Any, fifth: bool
) -> tuple[Any, Any, Any, bool]:
    """0.2's positional order is (service_commands, default_command, logger,
    is_catch_exceptions); the distributed one starts with the name. Undo the shift."""
    if first is None:
        return second, third, fourth, fifth
    default, logger, catch = third, fourth, fifth
    if isinstance(second, str):
        default = second
        logger = third if isinstance(third, logging.Logger) else fourth
        catch = fourth if isinstance(fourth, bool) else fifth
    return first, default, logger, catch


class Service(LegacyServiceMixin):
    """Command handlers of one service, declared with classes and/or a decorator::

        service = Service("validator")

        @service.command("validate_csv")
        async def validate(body: CsvFile, ctx: HandlerContext) -> CsvFile: ...

    or ``Service("validator", service_commands=ServiceBuilder(ServiceBlock(Validate)))``;
    without a name, orch_serv 0.2's service (see the module docstring).
    """

    service_commands: ClassVar[ServiceBuilder | None] = None
    #: The name a 0.2-style service is hosted under (default: the class name).
    service_name: ClassVar[str | None] = None
    _base_process_class: ClassVar[type] = CommandHandlerProcessStrategy
    _base_post_process_class: ClassVar[type] = CommandHandlerPostProcessStrategy
    _default_post_class: ClassVar[type] = DefaultPostProcessStrategy

    def __init__(
        self,
        name: str | ServiceBuilder | None = None,
        service_commands: ServiceBuilder | str | None = None,
        default_command: str | logging.Logger | None = None,
        logger: logging.Logger | bool | None = None,
        is_catch_exceptions: bool = True,
        *,
        handlers: Iterable[type[CommandHandler] | CommandHandler] = (),
    ) -> None:
        self.legacy = not isinstance(name, str)
        if self.legacy:
            service_commands, default_command, logger, is_catch_exceptions = _legacy_args(
                name, service_commands, default_command, logger, is_catch_exceptions
            )
            name = type(self).service_name or type(self).__name__
        try:
            self.name = check_name("service", name)
        except Exception as exc:
            raise ServiceBlockException(str(exc)) from exc
        if self.name == WAITS_SERVICE:
            raise ServiceBlockException(
                f"the service name {WAITS_SERVICE!r} is reserved for wait steps"
            )
        self.logger = logger if isinstance(logger, logging.Logger) else DEFAULT_LOGGER
        self.is_catch_exceptions = is_catch_exceptions
        self.swap_scope: dict[str, Any] = {}
        self.default_command = default_command if isinstance(default_command, str) else None
        self._handlers: dict[str, HandlerSpec] = {}
        self._commands: dict[str, ServiceCommand] = {}
        builder = service_commands or type(self).service_commands
        if self.legacy:
            self._init_legacy(builder)
        elif builder is not None:
            if not isinstance(builder, ServiceBuilder):
                raise ServiceBlockException(
                    "Variable `service_commands` must be a ServiceBuilder and not "
                    f"{type(builder).__name__}"
                )
            self._build(builder, builder.default_post)
        for handler in handlers:
            self._add(ServiceBlock(handler).spec(None))
        self._default_command = self.default_command

    def _init_legacy(self, builder: Any) -> None:
        if builder is None:
            raise NotImplementedError
        if not isinstance(builder, ServiceBuilder):
            raise ServiceBuilderException(type(builder))
        self._build(builder, builder.default_post or self._default_post_class())
        check_modes(self._commands, self._base_process_class, self._base_post_process_class)
        if self.default_command is not None and self.default_command not in self._commands:
            raise LegacyIncorrectDefaultCommand(self.default_command, self._commands)

    def _build(self, builder: ServiceBuilder, default_post: Any) -> None:
        self._commands = build_commands(
            builder.blocks, default_post, self, self.logger, own_copies=self.legacy
        )
        for command, handler in self._commands.items():
            self._add(handler_spec(command, handler.processor, handler.post_processor))

    def _add(self, spec: HandlerSpec) -> None:
        if spec.command in self._handlers:
            raise NotUniqueCommandError(
                f"Command `{spec.command}` is not unique for service {self.name!r}"
            )
        self._handlers[spec.command] = spec

    def command(
        self, name: str, *, post_process: HandlerFn | None = None
    ) -> Callable[[HandlerFn], HandlerFn]:
        """Decorator registering a function as the handler of command ``name``."""

        def register(fn: HandlerFn) -> HandlerFn:
            self._add(describe(name, fn, post_process))
            return fn

        return register

    @property
    def commands(self) -> list[str]:
        """Command names in declaration order."""
        return list(self._handlers)

    def validate(self) -> None:
        """Check the service is complete (called before it serves)."""
        if not self._handlers:
            raise EmptyCommandsException(f"service {self.name!r} has no commands")
        if self._default_command is not None and self._default_command not in self._handlers:
            raise IncorrectDefaultCommand(
                f"The `{self._default_command}` command which is the default command is not "
                f"among the valid commands : {self.commands}"
            )

    def resolve(self, command: str | None) -> HandlerSpec | None:
        """The handler for ``command``, falling back to the default command."""
        found = self._handlers.get(command or "")
        if found is None and self._default_command is not None:
            return self._handlers.get(self._default_command)
        return found

    def handle(self, message: Any, is_force_return: bool = False) -> Any:
        """orch_serv 0.2: run the message's command in process (see
        :meth:`LegacyServiceMixin.handle`). Only for a service built from a ServiceBuilder."""
        self._check_handle()
        return super().handle(message, is_force_return)

    def _check_handle(self) -> None:
        if not self._commands:
            raise OrchServError(
                f"service {self.name!r} has no ServiceBuilder commands: handle() runs the "
                "class-style handlers of `service_commands` in process"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, commands={self.commands})"


class AsyncService(AsyncLegacyServiceMixin, Service):
    """orch_serv 0.2's asynchronous service: async handlers, ``await handle(message)``."""

    _base_process_class = AsyncCommandHandlerProcessStrategy
    _base_post_process_class = AsyncCommandHandlerPostProcessStrategy
    _default_post_class = AsyncDefaultPostProcessStrategy

    async def handle(self, message: Any, is_force_return: bool = False) -> Any:
        """orch_serv 0.2: ``await`` the message's command in process."""
        self._check_handle()
        return await AsyncLegacyServiceMixin.handle(self, message, is_force_return)


def as_services(obj: Any) -> list[Service]:
    """Normalise what an import path points at into a list of services."""
    if isinstance(obj, Service):
        return [obj]
    services = getattr(obj, "services", obj)
    if isinstance(services, Iterable) and not isinstance(services, (str, bytes)):
        found = list(services)
        if found and all(isinstance(s, Service) for s in found):
            return found
    raise ServiceBlockException(f"{obj!r} is not a Service, a list of services, or an app")
