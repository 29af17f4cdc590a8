"""The ``cluster`` marker: tests that need the local clusters of scripts/cluster.sh.

They are deselected unless the marker expression names them (``pytest -m cluster``, as
``make cluster-test`` does), so that the default run never starts the clusters."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "cluster.sh"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/cluster.sh ARGS``."""
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )


def urls(output: str) -> dict[str, str]:
    """The ``NAME=URL`` lines the harness prints."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


@pytest.fixture(scope="session")
def cluster() -> Iterator[dict[str, str]]:
    """The clusters' URLs; stopped at the end unless they were running before."""
    was_running = harness("status").returncode == 0
    started = harness("start")
    assert started.returncode == 0, started.stderr
    try:
        yield urls(started.stdout)
    finally:
        if not was_running:
            stopped = harness("stop")
            assert stopped.returncode == 0, stopped.stderr
            assert not Path(
                os.environ.get("ORCH_SERV_CLUSTER_DIR", "/tmp/orch-serv-cluster")
            ).exists()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: needs the local Redis and RabbitMQ clusters (scripts/cluster.sh)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "cluster" in (config.option.markexpr or ""):
        return  # `-m cluster` (or `-m 'not cluster'`): pytest selects by the expression
    chosen = [item for item in items if item.get_closest_marker("cluster") is None]
    deselected = [item for item in items if item.get_closest_marker("cluster") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = chosen
