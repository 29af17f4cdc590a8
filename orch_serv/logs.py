"""structlog configuration: short snake_case event names, key-value fields, context bound
per message.

The service worker binds ``run_id``, ``step``, ``attempt``, ``command``, ``message_id`` and
``service`` with :mod:`structlog.contextvars` for the whole handling of a delivery (the
thread-pool call of a plain ``def`` handler gets a copy of that context), so every line logged
meanwhile carries them: the worker's, ``ctx.log``'s and the handler's own
``structlog.get_logger()`` lines. :func:`configure_logging` merges them in first; structlog's
default configuration does too."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Configure structlog once for a CLI process (libraries never call this)."""
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


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A bound logger tagged with the component name."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
