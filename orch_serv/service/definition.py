"""``Service``: a named set of command handlers that one kind of worker process hosts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from orch_serv.exceptions import (
    EmptyCommandsException,
    IncorrectDefaultCommand,
    NotUniqueCommandError,
    ServiceBlockException,
)
from orch_serv.flow.block import check_name
from orch_serv.service.handler import (
    CommandHandler,
    HandlerFn,
    HandlerSpec,
    ServiceBlock,
    ServiceBuilder,
    describe,
)


class Service:
    """Command handlers of one service, declared with classes and/or a decorator::

        service = Service("validator")

        @service.command("validate_csv")
        async def validate(body: CsvFile, ctx: HandlerContext) -> CsvReport: ...

    or ``Service("validator", service_commands=ServiceBuilder(ServiceBlock(Validate)))``.
    """

    service_commands: ServiceBuilder | None = None

    def __init__(
        self,
        name: str,
        service_commands: ServiceBuilder | None = None,
        *,
        handlers: Iterable[type[CommandHandler] | CommandHandler] = (),
        default_command: str | None = None,
    ) -> None:
        try:
            self.name = check_name("service", name)
        except Exception as exc:
            raise ServiceBlockException(str(exc)) from exc
        self._handlers: dict[str, HandlerSpec] = {}
        builder = service_commands or type(self).service_commands
        if builder is not None:
            if not isinstance(builder, ServiceBuilder):
                raise ServiceBlockException(
                    "Variable `service_commands` must be a ServiceBuilder and not "
                    f"{type(builder).__name__}"
                )
            for spec in builder.specs():
                self._add(spec)
        for handler in handlers:
            self._add(ServiceBlock(handler).spec(None))
        self._default_command = default_command

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

    def __repr__(self) -> str:
        return f"Service({self.name!r}, commands={self.commands})"


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
