"""structlog configuration: short snake_case event names, key-value fields, context bound
per message.

The service worker binds ``run_id``, ``step``, ``attempt``, ``command``, ``message_id`` and
``service`` with :mod:`structlog.contextvars` for the whole handling of a delivery (the
thread-pool call of a plain ``def`` handler gets a copy of that context), so every line logged
meanwhile carries them: the worker's, ``ctx.log``'s and the handler's own
``structlog.get_logger()`` lines. :func:`configure_logging` merges them in first; structlog's
default configuration does too."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import structlog


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Configure structlog once for a CLI process (libraries never call this)."""
    import structlog

    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class _Lazy:
    """A logger that imports structlog at its first use: ``import orch_serv`` stays light
    (structlog imports rich, when installed, for its console renderer)."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        logger = self._logger
        if logger is None:
            import structlog

            logger = self._logger = structlog.get_logger(component=self._name)
        return getattr(logger, attr)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A bound logger tagged with the component name."""
    return cast("structlog.typing.FilteringBoundLogger", _Lazy(name))


class bound_context:
    """Bind ``values`` to every log line of the current context (``structlog.contextvars``)
    until the block ends. Cheaper than ``structlog.contextvars.bound_contextvars``, which
    copies the whole context on entry, and than ``bind_contextvars``, which looks its
    variables up by name on every call: the engine and the workers enter one per delivery,
    so the variables are looked up once per key and kept."""

    __slots__ = ("_tokens", "_values")

    def __init__(self, **values: Any) -> None:
        self._values = values
        self._tokens: list[contextvars.Token[Any]] = []

    def __enter__(self) -> None:
        known = _VARS
        self._tokens = [
            (known.get(key) or _var(key)).set(value) for key, value in self._values.items()
        ]

    def __exit__(self, *exc: object) -> None:
        for token in reversed(self._tokens):
            token.var.reset(token)


#: structlog's context variable of each key bound so far.
_VARS: dict[str, contextvars.ContextVar[Any]] = {}


def _var(key: str) -> contextvars.ContextVar[Any]:
    """structlog's variable for ``key`` (created by binding it once, through its API)."""
    tokens: Mapping[str, contextvars.Token[Any]] = _contextvars().bind_contextvars(**{key: None})
    _contextvars().reset_contextvars(**tokens)
    var = _VARS[key] = tokens[key].var
    return var


_CONTEXTVARS: Any = None


def _contextvars() -> Any:
    """``structlog.contextvars``, imported on first use."""
    global _CONTEXTVARS
    if _CONTEXTVARS is None:
        import structlog.contextvars

        _CONTEXTVARS = structlog.contextvars
    return _CONTEXTVARS
