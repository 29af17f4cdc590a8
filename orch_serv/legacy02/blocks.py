"""orch_serv 0.2's blocks: ``SyncBlock`` and ``AsyncBlock``, run in process.

A block is one link of a chain (``set_next``). ``handle(message)`` runs **one** block per
call, chosen by the message's source: no source, this block; the source is this block, the
next one; otherwise the chain is searched. The chosen block runs its pre hook (a falsy return
stops silently), records itself as the source, runs ``process`` and then its post hook (with
the processed message, or with a copy of the input when ``process`` returned nothing and the
block's ``is_execute_after_nullable_process_msg`` is true).
"""

from __future__ import annotations

import inspect
import logging
import types
from abc import ABC, abstractmethod
from collections.abc import Callable
from copy import deepcopy
from typing import Any, ClassVar, cast

from orch_serv.exc import FlowException
from orch_serv.legacy02.logs import DEFAULT_LOGGER

HookFn = Callable[[Any], Any]


class _Abstract:
    """What both abstract bases declare: the name and hook properties raise
    ``NotImplementedError`` until a subclass provides them."""

    @property
    def name_block(self) -> str:
        """The block's identifier (a class attribute on user blocks)."""
        raise NotImplementedError

    @property
    def pre_handler_function(self) -> HookFn | None:
        """The hook run before ``process``."""
        raise NotImplementedError

    @property
    def post_handler_function(self) -> HookFn | None:
        """The hook run after ``process``."""
        raise NotImplementedError


class SyncBaseBlock(_Abstract, ABC):
    """Abstract base of synchronous blocks."""

    @abstractmethod
    def set_next(self, handler: Any) -> Any:
        """Link the next block."""

    @abstractmethod
    def get_next(self) -> Any:
        """The next block or None."""

    @abstractmethod
    def get_list_flow(self) -> str:
        """The chain as text."""

    @abstractmethod
    def handle(self, message: Any) -> Any:
        """Dispatch a message along the chain."""

    @abstractmethod
    def process(self, message: Any) -> Any:
        """The block's work."""


class AsyncBaseBlock(_Abstract, ABC):
    """Abstract base of asynchronous blocks."""

    @abstractmethod
    def set_next(self, handler: Any) -> Any:
        """Link the next block."""

    @abstractmethod
    def get_next(self) -> Any:
        """The next block or None."""

    @abstractmethod
    def get_list_flow(self) -> str:
        """The chain as text."""

    @abstractmethod
    async def handle(self, message: Any) -> Any:
        """Dispatch a message along the chain."""

    @abstractmethod
    async def process(self, message: Any) -> Any:
        """The block's work."""


class _BlockLogic:
    """Hooks, chaining and dispatch shared by ``SyncBlock`` and ``AsyncBlock``."""

    _mode_base: ClassVar[type]
    _hook_types: ClassVar[tuple[type, ...]] = (types.FunctionType, types.MethodType)
    #: Run the post hook (with a copy of the input) when ``process`` returned nothing.
    is_execute_after_nullable_process_msg: bool = True
    name_block: str

    def __init__(
        self,
        pre_handler_function: HookFn | None = None,
        post_handler_function: HookFn | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._pre: HookFn | None = None
        self._post: HookFn | None = None
        self._next: Any = None
        self.logger = logger or DEFAULT_LOGGER
        self.pre_handler_function = pre_handler_function
        self.post_handler_function = post_handler_function

    def _check_hook(self, kind: str, value: Any) -> HookFn | None:
        if not value:  # None or "": no hook (0.2 kept the previous hook instead)
            return None
        if isinstance(value, self._hook_types):
            return cast(HookFn, value)
        raise TypeError(f"Incorrect type {kind}, the attribute must be a function or None")

    @property
    def pre_handler_function(self) -> HookFn | None:
        """The hook run before ``process``; assigning None (or "") removes it."""
        return self._pre

    @pre_handler_function.setter
    def pre_handler_function(self, value: Any) -> None:
        self._pre = self._check_hook("pre_handler_function", value)

    @property
    def post_handler_function(self) -> HookFn | None:
        """The hook run after ``process``; assigning None (or "") removes it."""
        return self._post

    @post_handler_function.setter
    def post_handler_function(self, value: Any) -> None:
        self._post = self._check_hook("post_handler_function", value)

    def set_next(self, handler: Any) -> Any:
        """Link ``handler`` (a block of the same mode, class or instance) after this one and
        return it, so calls chain."""
        if isinstance(handler, type):
            handler = handler()
        if not isinstance(handler, self._mode_base):
            raise TypeError("Incorrect type for next handler")
        self._next = handler
        return handler

    def get_next(self) -> Any:
        """The next block, or None at the end of the chain."""
        return self._next

    def get_list_flow(self) -> str:
        """``"first block -> second block -> end"``."""
        names: list[str] = []
        block: Any = self
        while block is not None:
            names.append(block.name_block)
            block = block.get_next()
        return " -> ".join([*names, "end"])

    def _choose(self, message: Any) -> tuple[Any, bool]:
        """(block, True) when ``block`` processes the message; (next, False) to search on."""
        source = message.get_source()
        if not source:
            return self, True
        nxt = self.get_next()
        if source == self.name_block:
            if nxt is None:
                raise FlowException(
                    f"the source `{source}` is the last block of the chain, nothing follows it"
                )
            return nxt, True
        if nxt is not None:
            return nxt, False
        raise FlowException(f"Not found block for source: {message}")

    def __repr__(self) -> str:
        name = getattr(self, "name_block", "?")
        return f"<{type(self).__name__} {name!r}>"


class SyncBlock(_BlockLogic, SyncBaseBlock):
    """A synchronous block: set ``name_block`` and implement ``process(message)``."""

    _mode_base = SyncBaseBlock

    def handle(self, message: Any) -> None:
        """Run the one block the message's source selects (see the module docstring)."""
        block, chosen = self._choose(message)
        if not chosen:
            block.handle(message)
            return
        pre = block.pre_handler_function
        if pre is not None:
            message = pre(message)
            if not message:
                return
        message.set_source(block.name_block)
        copy = deepcopy(message)
        new = block.process(message)
        post = block.post_handler_function
        if post is not None:
            if new:
                post(new)
            elif block.is_execute_after_nullable_process_msg:
                post(copy)


async def _call(hook: HookFn, message: Any) -> Any:
    result = hook(message)
    if inspect.isawaitable(result):
        result = await result
    return result


class AsyncBlock(_BlockLogic, AsyncBaseBlock):
    """An asynchronous block: set ``name_block`` and implement ``async def process``."""

    _mode_base = AsyncBaseBlock
    _hook_types = (types.FunctionType, types.MethodType, types.CoroutineType)

    async def handle(self, message: Any) -> None:
        """Run the one block the message's source selects (see the module docstring)."""
        block, chosen = self._choose(message)
        if not chosen:
            await block.handle(message)
            return
        pre = block.pre_handler_function
        if pre is not None:
            message = await _call(pre, message)
            if not message:
                return
        message.set_source(block.name_block)
        copy = deepcopy(message)
        new = await block.process(message)
        post = block.post_handler_function
        if post is not None:
            if new:
                await _call(post, new)
            elif block.is_execute_after_nullable_process_msg:
                await _call(post, copy)


__all__ = ["AsyncBaseBlock", "AsyncBlock", "SyncBaseBlock", "SyncBlock"]
