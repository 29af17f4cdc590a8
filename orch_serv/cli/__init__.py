"""``orch-serv``: run orchestrators and services, start runs, inspect them.

Settings come from ``ORCH_SERV_*`` environment variables (see :class:`Settings`), or from the
global options, which win. The commands live in one module per concern: ``serve``
(orchestrator, service, dev), ``runs`` (start, cancel, retry), ``show`` (status, runs,
flows), ``dlq``; ``common`` holds what they share (exit codes, errors, option checks).
"""

# ruff: noqa: I001 - the command modules are imported in the order of `orch-serv --help`

from __future__ import annotations

from orch_serv.cli.app import app

# Importing the command modules registers their commands on ``app``.
from orch_serv.cli import serve as serve
from orch_serv.cli import runs as runs
from orch_serv.cli import show as show
from orch_serv.cli import dlq as dlq
from orch_serv.cli import api as api
from orch_serv.cli import models as models
from orch_serv.cli import charts as charts

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
