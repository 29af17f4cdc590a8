"""0.2 handlers hosted by the service worker: the user's message in, the user's message out.

The command's body is rebuilt into the user's message class (:mod:`orch_serv.legacy02.wire`),
``process(msg)`` runs (``async def`` on the loop, plain ``def`` in the worker's thread pool),
and the message it returns is the reply's body. Its post-processor gets
``(msg, additional_data)`` after the reply is confirmed.

Fixed against 0.2: a ``process`` that returns the message itself is never unpacked as if it
were a ``(message, additional_data)`` pair (0.2 iterated the pydantic model, so the
post-processor received ``('body', ...)`` and ``('header', ...)``); only a real 2-tuple is.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel

from orch_serv.legacy02 import wire
from orch_serv.legacy02.handlers import LegacyHandler
from orch_serv.legacy02.message import BaseOrchServMsg

if TYPE_CHECKING:
    from orch_serv.service.handler import HandlerSpec


@dataclass(frozen=True, slots=True)
class Extra:
    """What the handler passes its post-processor: the additional data, or ``skip`` when
    ``process`` returned nothing (0.2 then ran no post-processor)."""

    value: Any = None
    skip: bool = False


def split(resp: Any) -> tuple[Any, Any]:
    """``(message, additional_data)`` of what ``process`` returned."""
    if isinstance(resp, BaseModel):
        return resp, None
    if isinstance(resp, tuple) and len(resp) == 2:
        return resp[0], resp[1]
    return resp, None


def message_class(fn: Any) -> type[BaseOrchServMsg[Any, Any]] | None:
    """The 0.2 message class ``fn``'s first parameter is annotated with, if any."""
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        hints = get_type_hints(fn)
    except (NameError, TypeError, ValueError):
        return None
    hint = hints.get(params[0].name) if params else None
    if isinstance(hint, type) and issubclass(hint, BaseOrchServMsg):
        return hint
    return None


def reply_body(resp: Any) -> tuple[Any, Extra]:
    """The reply body (None: the input goes on unchanged) and the post-processor's data."""
    out, extra = split(resp)
    if not out:
        return None, Extra(skip=True)
    if isinstance(out, BaseOrchServMsg):
        return wire.dump(out), Extra(extra)
    return out, Extra(extra)


def legacy_spec(command: str, processor: Any, post_processor: Any) -> HandlerSpec:
    """The worker's handler for a 0.2 processor and its post-processor."""
    from orch_serv.service.handler import HandlerSpec

    expected = message_class(processor.process)
    is_async = inspect.iscoroutinefunction(processor.process)

    def run(body: Any) -> Any:
        return reply_body(processor.process(wire.load(body, expected)))

    async def run_async(body: Any) -> Any:
        return reply_body(await processor.process(wire.load(body, expected)))

    post = None if post_processor is None else post_processor.post_process
    post_is_async = post is not None and inspect.iscoroutinefunction(post)
    # a distributed CommandHandlerPostProcess beside a 0.2 processor also gets the context
    with_ctx = post is not None and not isinstance(post_processor, LegacyHandler)

    def after(result: Any, extra: Any, ctx: Any) -> Any:
        data = extra if isinstance(extra, Extra) else Extra(extra)
        if data.skip or post is None:
            return None
        message = wire.load(result, expected) if wire.is_wrapped(result) else result
        return post(message, data.value, ctx) if with_ctx else post(message, data.value)

    async def after_async(result: Any, extra: Any, ctx: Any) -> None:
        pending = after(result, extra, ctx)
        if inspect.isawaitable(pending):
            await pending

    return HandlerSpec(
        command=command,
        fn=run_async if is_async else run,
        model=None,
        takes_context=False,
        is_async=is_async,
        post=None if post is None else (after_async if post_is_async else after),
        post_is_async=post_is_async,
    )


__all__ = ["Extra", "legacy_spec", "message_class", "reply_body", "split"]
