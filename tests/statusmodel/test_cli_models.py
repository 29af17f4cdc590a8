"""``orch-serv models load|list|show`` in a subprocess, against the real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orch_serv.settings import Settings
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

ORDER = """
name: ORDER
timeout_seconds: 60
statuses:
  - {name: ACCEPTED}
  - {name: CANCELLED, type: STOP-STATUS, after: [ACCEPTED]}
"""


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_KEY_PREFIX": settings.key_prefix,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "orch_serv", "models", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_load_list_show(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "order.yaml"
    path.write_text(ORDER)
    checked = _cli(settings, "load", str(path), "--check")
    assert checked.returncode == 0 and "checked 'ORDER'" in checked.stdout
    assert "ORDER" not in _cli(settings, "list").stdout  # --check publishes nothing
    loaded = _cli(settings, "load", str(path))
    assert loaded.returncode == 0, loaded.stderr
    listed = json.loads(_cli(settings, "list", "--format", "json").stdout)
    assert [m["name"] for m in listed] == ["2-POINT LINE TASK", "ORDER"]
    shown = json.loads(_cli(settings, "show", "ORDER").stdout)
    assert shown["timeout_seconds"] == 60 and shown["statuses"][1]["type"] == "STOP"
    table = _cli(settings, "list").stdout
    assert "ORDER" in table and "CANCELLED (STOP)" in table


def test_mistakes_exit_with_the_reason(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: X\nstatuses: [{name: A, after: [B]}]\n")
    result = _cli(settings, "load", str(bad))
    assert result.returncode == 2
    assert "bad.yaml: model: status 'A' follows unknown status 'B'" in result.stderr
    missing = _cli(settings, "load", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "none.yaml: cannot read" in missing.stderr
    unknown = _cli(settings, "show", "NOPE")
    assert unknown.returncode == 1 and "no status model 'NOPE'" in unknown.stderr
