"""``import orch_serv`` stays light, and exports what a user of the client catches."""

from __future__ import annotations

import subprocess
import sys

import orch_serv


def test_import_loads_no_client_library() -> None:
    code = (
        "import sys, orch_serv\n"
        "heavy = ('aio_pika', 'aiormq', 'redis', 'fakeredis', 'rich', 'structlog', 'typer')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_the_errors_a_client_catches_are_exported() -> None:
    for name in (
        "OrchServError",
        "RunNotFound",
        "InvalidRunState",
        "FlowNotFound",
        "IdempotencyConflict",
        "MessageTooLarge",
        "NamespaceConflict",
        "TransportError",
        "StoreError",
    ):
        error = getattr(orch_serv, name)
        assert issubclass(error, orch_serv.OrchServError) and name in orch_serv.__all__
