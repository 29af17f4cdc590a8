"""Command handlers: declared as classes (orch_serv's style) or with ``@service.command``.

A handler receives the step's body, validated against the model its first parameter is
annotated with (a pydantic model; ``dict``/``Any``/no annotation means the raw JSON), and,
if it takes a second parameter, a :class:`~orch_serv.service.context.HandlerContext`.
It may be ``async def`` or plain ``def`` (run in a thread pool). It returns the body for the
next step: a pydantic model, any JSON value, ``None`` (pass the input on unchanged), or a
``(result, extra)`` tuple whose ``extra`` goes to the post-processor only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import UnionType
from typing import TYPE_CHECKING, Any, ClassVar, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from orch_serv.exc import (
    DoublePostProcessFunctionDeclaredError,
    EmptyCommandsException,
)
from orch_serv.exc import ServiceBlockException as LegacyServiceBlockException
from orch_serv.exceptions import ServiceBlockException
from orch_serv.flow.block import NAME_PATTERN
from orch_serv.legacy02.handlers import LegacyHandler
from orch_serv.service.strategies import (
    AsyncCommandHandlerPostProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
    CommandHandlerPostProcessStrategy,
    CommandHandlerProcessStrategy,
)

if TYPE_CHECKING:
    from orch_serv.service.context import HandlerContext

HandlerFn = Callable[..., Any]


class CommandHandler:
    """Class-style handler: set ``target_command`` and implement ``process``."""

    target_command: ClassVar[str]

    def process(self, body: Any, ctx: HandlerContext) -> Any:
        """Execute the command (may be ``async def``)."""
        raise NotImplementedError


class CommandHandlerPostProcess:
    """Runs after the reply of a successful command is confirmed (side effects only)."""

    def post_process(self, result: Any, extra: Any, ctx: HandlerContext) -> Any:
        """Called with the result, the handler's extra data and the context (may be async)."""
        raise NotImplementedError


#: What ServiceBlock accepts: a distributed class-style handler or a 0.2 strategy.
PROCESSORS: tuple[type, ...] = (
    CommandHandler,
    CommandHandlerProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
)
POST_PROCESSORS: tuple[type, ...] = (
    CommandHandlerPostProcess,
    CommandHandlerPostProcessStrategy,
    AsyncCommandHandlerPostProcessStrategy,
)


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A handler ready to call."""

    command: str
    fn: HandlerFn
    model: type[BaseModel] | None
    takes_context: bool
    is_async: bool
    post: HandlerFn | None = None
    post_is_async: bool = False
    #: The annotation was ``Model | None``: a null body is passed as None.
    optional: bool = False
    #: The post-processor takes ``(result, extra, ctx)``; False: ``(result, extra)``.
    post_takes_context: bool = True

    def parse(self, body: Any) -> Any:
        """Validate the body against the handler's model (once, at the service edge)."""
        if self.model is None or (body is None and self.optional):
            return body
        return self.model.model_validate(body)


def _body_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The pydantic model a body annotation names (``Model`` or ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    if get_origin(annotation) in (Union, UnionType) and type(None) in args:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and len(args) == 2:
            return models[0], True
    return None, False


_ROLES = {
    "process": "`CommandHandlerProcessStrategy` or `AsyncCommandHandlerProcessStrategy`",
    "post_process": "`CommandHandlerPostProcessStrategy` or "
    "`AsyncCommandHandlerPostProcessStrategy`",
}


def _instance(obj: Any, base: type | tuple[type, ...], role: str) -> Any:
    if isinstance(obj, base):
        return obj
    if isinstance(obj, type) and issubclass(obj, base):
        return obj()
    raise LegacyServiceBlockException(
        f"`{role}` object must be of type {_ROLES[role]} and not {_kind(obj)}"
    )


def _kind(obj: Any) -> Any:
    """What an error names: a class itself, or the type of an instance."""
    return obj if isinstance(obj, type) else type(obj)


def _positional_count(fn: Any) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 3
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 3
    return len([p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])


def _is_async(fn: HandlerFn) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def describe(command: str, fn: HandlerFn, post: HandlerFn | None = None) -> HandlerSpec:
    """Inspect a handler function: its body model and whether it wants the context."""
    if not isinstance(command, str) or not NAME_PATTERN.match(command):
        raise ServiceBlockException(f"command name must be a short identifier, not {command!r}")
    if not callable(fn):
        raise ServiceBlockException(f"handler for {command!r} is not callable: {fn!r}")
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not 1 <= len(params) <= 2:
        raise ServiceBlockException(
            f"handler for {command!r} must take (body) or (body, ctx), not {len(params)} arguments"
        )
    try:
        hints = get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    model, optional = _body_model(hints.get(params[0].name))
    return HandlerSpec(
        command=command,
        fn=fn,
        model=model,
        optional=optional,
        takes_context=len(params) == 2,
        is_async=_is_async(fn),
        post=post,
        post_is_async=post is not None and _is_async(post),
        post_takes_context=post is None or _positional_count(post) >= 3,
    )


def handler_spec(command: str, processor: Any, post: Any) -> HandlerSpec:
    """The compiled handler of a class-style processor and its post-processor (a 0.2
    strategy receives the user's message, see :mod:`orch_serv.legacy02.service_specs`)."""
    if isinstance(processor, LegacyHandler):
        from orch_serv.legacy02.service_specs import legacy_spec

        return legacy_spec(command, processor, post)
    return describe(command, processor.process, post.post_process if post else None)


class ServiceBlock:
    """A handler with an optional post-processor (classes or instances)."""

    def __init__(self, processor: Any, post_processor: Any = None) -> None:
        self.processor: Any = _instance(processor, PROCESSORS, "process")
        self.post_processor: Any = (
            None
            if post_processor is None
            else _instance(post_processor, POST_PROCESSORS, "post_process")
        )
        try:
            command = getattr(self.processor, "target_command", None)
        except NotImplementedError:
            command = None
        if command is None:
            raise ServiceBlockException(f"{type(self.processor).__name__} has no `target_command`")
        self.command: str = command

    def spec(self, default_post: CommandHandlerPostProcess | None) -> HandlerSpec:
        """The compiled handler."""
        return handler_spec(self.command, self.processor, self.post_processor or default_post)


class ServiceBuilder:
    """``ServiceBuilder(ServiceBlock(A), ServiceBlock(B), default_post_process=P)``."""

    def __init__(self, *blocks: Any, default_post_process: Any = None) -> None:
        found_blocks: list[ServiceBlock] = []
        positional_post = None
        for block in blocks:
            if isinstance(block, ServiceBlock):
                found_blocks.append(block)
            elif isinstance(block, POST_PROCESSORS) or (
                isinstance(block, type) and issubclass(block, POST_PROCESSORS)
            ):
                if positional_post is not None or default_post_process is not None:
                    raise DoublePostProcessFunctionDeclaredError()
                positional_post = block
            else:
                raise LegacyServiceBlockException(
                    f"block must be instance class `ServiceBlock`. Not {_kind(block)}"
                )
        if not found_blocks:
            raise EmptyCommandsException()
        post = default_post_process if default_post_process is not None else positional_post
        self.blocks = tuple(found_blocks)
        self.default_post: Any = (
            None if post is None else _instance(post, POST_PROCESSORS, "post_process")
        )

    def build(self, service: Any, logger: Any = None) -> dict[str, Any]:
        """orch_serv 0.2: ``{command: ServiceCommand}`` for ``service`` (handlers of its own,
        with its logger; a block without a post-processor gets the default one, or the
        service mode's no-op)."""
        from orch_serv.legacy02.services import build_commands

        default = self.default_post or service._default_post_class()
        return build_commands(self.blocks, default, service, logger or service.logger)

    def specs(self) -> list[HandlerSpec]:
        """Compiled handlers in declaration order."""
        return [b.spec(self.default_post) for b in self.blocks]
