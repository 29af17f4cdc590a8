"""``Block``: one step of a flow, i.e. a command that one service executes.

A block is declared as a subclass with class attributes (orch_serv's style)::

    class Resize(Block):
        name_block = "resize"
        service = "images"
        command = "resize"          # defaults to name_block

or as an instance: ``Block("resize", service="images")``. Optional ``pre_handler_function``
and ``post_handler_function`` hooks run in the orchestrator: the pre hook sees the command
message before it is sent (it may change it, or return ``None`` to stop the run there), the
post hook sees the reply before it is forwarded to the next step (it may return a new message).
"""

from __future__ import annotations

import inspect
import re
import types
from typing import cast

from orch_serv.exceptions import BlockException
from orch_serv.flow.hooks import HookSpec
from orch_serv.flow.policy import RetryPolicy, Timeouts

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def check_name(kind: str, value: object) -> str:
    """Validate an identifier used in queue names and Redis keys."""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise BlockException(
            f"{kind} must be 1-128 characters of letters, digits, '_', '.' or '-', not {value!r}"
        )
    return value


def check_hook(kind: str, hook: object) -> HookSpec:
    """A hook is a callable, the name of a method of the flow, or None."""
    if hook is None or callable(hook) or (isinstance(hook, str) and hook):
        return cast(HookSpec, hook)
    raise BlockException(
        f"Incorrect type {kind}, the attribute must be a callable, a method name or None, "
        f"not {type(hook).__name__}"
    )


class Block:
    """A step definition: which service runs which command, with optional hooks."""

    name_block: str
    service: str
    command: str
    pre_handler_function: HookSpec
    post_handler_function: HookSpec
    retry: RetryPolicy | None
    timeouts: Timeouts | None
    compensate: str | None

    def __init__(
        self,
        name_block: str | None = None,
        *,
        service: str | None = None,
        command: str | None = None,
        pre_handler_function: HookSpec = None,
        post_handler_function: HookSpec = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        compensate: str | None = None,
    ) -> None:
        cls = type(self)
        name = name_block if name_block is not None else getattr(cls, "name_block", None)
        svc = service if service is not None else getattr(cls, "service", None)
        if name is None:
            raise BlockException(f"{cls.__name__}: a block needs a `name_block`")
        if svc is None:
            raise BlockException(f"block {name!r}: a block needs a `service`")
        cmd = command or getattr(cls, "command", None) or name
        pre = pre_handler_function or self._declared_hook("pre_handler_function")
        post = post_handler_function or self._declared_hook("post_handler_function")
        self.name_block = check_name("name_block", name)
        self.service = check_name("service", svc)
        self.command = check_name("command", cmd)
        self.pre_handler_function = check_hook("pre_handler_function", pre)
        self.post_handler_function = check_hook("post_handler_function", post)
        self.retry = check_policy(retry or getattr(cls, "retry", None))
        self.timeouts = check_timeouts(timeouts or getattr(cls, "timeouts", None))
        comp = compensate or getattr(cls, "compensate", None)
        self.compensate = None if comp is None else check_name("compensate", comp)

    def _declared_hook(self, name: str) -> object:
        """A hook declared on the class (or a base). ``def pre_handler_function(self, msg)``
        is a method and is bound to this block; a function assigned under that name
        (``pre_handler_function = my_hook``, or a staticmethod) is used as it is."""
        raw = inspect.getattr_static(type(self), name, None)
        if isinstance(raw, staticmethod):
            return raw.__func__
        if isinstance(raw, types.FunctionType) and raw.__name__ == name:
            return getattr(self, name)
        return raw

    def __repr__(self) -> str:
        return f"Block({self.name_block!r}, service={self.service!r}, command={self.command!r})"

    def identity(self) -> tuple[str, str, str]:
        """What makes two blocks the same block: name, service and command."""
        return (self.name_block, self.service, self.command)


def check_policy(value: object) -> RetryPolicy | None:
    """A retry policy or None."""
    if value is None or isinstance(value, RetryPolicy):
        return value
    raise BlockException(f"retry must be a RetryPolicy or None, not {type(value).__name__}")


def check_timeouts(value: object) -> Timeouts | None:
    """Timeouts or None."""
    if value is None or isinstance(value, Timeouts):
        return value
    raise BlockException(f"timeouts must be a Timeouts or None, not {type(value).__name__}")


def as_block(obj: object) -> Block:
    """Turn a Block subclass or instance into an instance; anything else is an error."""
    if isinstance(obj, Block):
        return obj
    if isinstance(obj, type) and issubclass(obj, Block):
        return obj()
    raise BlockException(
        "Incorrect type block handler. The block must inherit from the class 'Block', "
        f"and not : {obj!r}"
    )
