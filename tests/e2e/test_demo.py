"""`make demo` on a machine with nothing configured: the embedded backends, every run
SUCCEEDED. Run as a subprocess with a scrubbed environment (no ORCH_SERV_* variables)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def scrubbed_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env["COLUMNS"] = "200"
    return env


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_runs_the_pipeline_on_the_embedded_backends() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=ROOT,
        env=scrubbed_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "embedded in-memory backends" in output
    assert output.count("SUCCEEDED") == 5, output
    assert "every run succeeded" in output


def test_dev_mode_says_it_uses_the_embedded_backends() -> None:
    cli = Path(sys.executable).parent / "orch-serv"
    proc = subprocess.Popen(
        [str(cli), "dev", "flows.ingest:orchestrator"],
        cwd=ROOT,
        env=scrubbed_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    seen = first
    while "Ctrl-C to stop" not in seen.splitlines()[-1]:  # the signal handlers are set
        line = proc.stdout.readline()
        assert line, seen
        seen += line
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert "using the embedded in-memory broker and store" in first, seen + rest
    assert proc.returncode == 0, seen + rest
