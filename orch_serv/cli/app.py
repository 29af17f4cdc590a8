"""The ``orch-serv`` typer application and its global options.

Settings come from ``ORCH_SERV_*`` environment variables (see :class:`Settings`), or from the
global options, which win.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError

from orch_serv import __version__
from orch_serv.cli.common import (
    EXIT_USAGE,
    fail,
    out,
    quiet_connect_errors,
    set_settings,
    validation_message,
)
from orch_serv.logs import configure_logging
from orch_serv.settings import Settings

app = typer.Typer(
    name="orch-serv",
    help="Message-driven orchestrator: flows of blocks over RabbitMQ, runs tracked in Redis.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"orch-serv {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def configure(
    amqp_url: Annotated[str | None, typer.Option(help="RabbitMQ URL.")] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis URL.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Exchange/queue name prefix.")] = None,
    key_prefix: Annotated[str | None, typer.Option(help="Redis key prefix.")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="Log level: DEBUG, INFO, WARNING, ERROR, CRITICAL.")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="Log format on stderr: console or json.")
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options; each also reads ORCH_SERV_<NAME> from the environment."""
    overrides = {
        "amqp_url": amqp_url,
        "redis_url": redis_url,
        "namespace": namespace,
        "key_prefix": key_prefix,
        "log_level": log_level,
        "log_format": log_format,
    }
    try:
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        settings = Settings.model_validate(given)
    except ValidationError as exc:
        raise fail(f"invalid settings: {validation_message(exc)}", EXIT_USAGE) from None
    set_settings(settings)
    configure_logging(settings.log_level, settings.log_format)
    quiet_connect_errors()
