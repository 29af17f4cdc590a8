"""What every ``orch-serv`` command shares: output consoles, settings, exit codes, turning
errors into one clear line, option checks and reading a JSON body.

Exit codes: 0 success; 1 the operation failed (unknown run or dead letter, a run that did
not succeed, a conflict, a server that cannot be reached); 2 bad usage or input (an
invalid option, an unknown flow or block, a body that is not JSON or is too large).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from orch_serv.exceptions import FlowNotFound, MessageTooLarge, OrchServError
from orch_serv.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# A pipe gets wide lines (`orch-serv runs | grep ID`) unless COLUMNS says otherwise; ids
# never wrap in any case (render.py).
# Markup is off: run errors, bodies and reasons are shown as they are ("[Errno 111]").
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 240, markup=False)
err = Console(stderr=True, soft_wrap=True, markup=False)
T = TypeVar("T")

#: Errors that are the caller's input, not a failure of the system: exit code 2.
_USAGE_ERRORS: tuple[type[OrchServError], ...] = (FlowNotFound, MessageTooLarge)


class Format(StrEnum):
    """Output format."""

    table = "table"
    json = "json"


class _State:
    settings: Settings | None = None


def set_settings(settings: Settings) -> None:
    """The settings the global options built (read by every command)."""
    _State.settings = settings


def settings() -> Settings:
    """The settings of this invocation (the environment alone when no global option ran)."""
    if _State.settings is None:
        _State.settings = Settings()
    return _State.settings


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises the returned exit."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line, without the rejected input (it may hold a password):
    ``amqp_url: 'x' is not a URL of amqp://, ...``."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's coroutine on uvloop; an orch_serv error becomes one ``error:`` line
    and exit code 1 (2 for the caller's input)."""
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(main())
    except _USAGE_ERRORS as exc:
        raise fail(exc.message or str(exc), EXIT_USAGE) from None
    except OrchServError as exc:
        raise fail(exc.message or str(exc)) from None
    except ValidationError as exc:  # a body the wire format refuses
        raise fail(f"invalid input: {validation_message(exc)}", EXIT_USAGE) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (it is, on Linux and macOS)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return None
    return uvloop.new_event_loop


class _ReportedConnectErrors(logging.Filter):
    """aiormq logs every failed connection attempt at ERROR before raising; the CLI reports
    the raised error itself (one line, password masked), so the log line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("error when creating transport")


def quiet_connect_errors() -> None:
    """Install :class:`_ReportedConnectErrors` (idempotent)."""
    logger = logging.getLogger("aiormq.connection")
    if not any(isinstance(f, _ReportedConnectErrors) for f in logger.filters):
        logger.addFilter(_ReportedConnectErrors())


# -- option checks (typer callbacks) ---------------------------------------------------------
def non_negative(value: float | None) -> float | None:
    """Refuse a negative number of seconds."""
    if value is not None and value < 0:
        raise typer.BadParameter(f"must be >= 0, got {value}")
    return value


def positive(value: float | None) -> float | None:
    """Refuse zero or a negative number."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be > 0, got {value}")
    return value


# -- bodies ----------------------------------------------------------------------------------
def parse_body(text: str, max_bytes: int, option: str = "--body") -> Any:
    """The JSON of ``--body`` (or ``option``): inline JSON, ``@path`` (a file) or ``-`` (stdin).
    A missing file, invalid JSON or more than ``max_bytes`` exits 2 with one clear line."""
    if text == "-":
        source, data = f"{option} - (stdin)", sys.stdin.buffer.read(max_bytes + 1)
    elif text.startswith("@"):
        source, data = f"{option} {text}", _read_file(text[1:], max_bytes, option)
    else:
        source, data = option, text.encode()
    if len(data) > max_bytes:
        raise fail(
            f"{source} is over the limit of {max_bytes} bytes (max_message_bytes); "
            f"nothing was {'started' if option == '--body' else 'sent'}",
            EXIT_USAGE,
        )
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise fail(f"{source} is not valid JSON: {exc}", EXIT_USAGE) from None


def _read_file(name: str, max_bytes: int, option: str) -> bytes:
    if not name:
        raise fail(f"{option} @: give a file name after @ (or - for stdin)", EXIT_USAGE)
    try:
        with Path(name).open("rb") as handle:
            return handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise fail(f"{option} @{name}: no such file", EXIT_USAGE) from None
    except OSError as exc:
        raise fail(f"{option} @{name}: cannot read it: {exc.strerror or exc}", EXIT_USAGE) from None
