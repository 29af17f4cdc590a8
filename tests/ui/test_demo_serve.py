"""``python -m services_examples.demo --serve``: the demo's runs, then the dashboard over the
same (embedded) backends until Ctrl-C, which ends it with exit code 0."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.test_demo import scrubbed_env

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_serves_its_runs_on_the_dashboard_until_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "services_examples.demo", "--serve", "--port", "0"],
        cwd=ROOT,
        env=scrubbed_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = ""
    try:
        while "Dashboard:" not in seen:
            line = proc.stdout.readline()
            assert line, seen
            seen += line
        found = re.search(r"Dashboard: (http://\S+/ui)", seen)
        assert found is not None, seen
        assert "every run succeeded" in seen
        with httpx.Client(base_url=found.group(1), follow_redirects=True, timeout=30) as client:
            runs = client.get("/runs")
            assert runs.status_code == 200
            assert runs.text.count('<tr data-run="') == 5  # four ingest runs and one profile
            flows = client.get("/flows").text
            assert 'aria-label="flow ingest"' in flows and 'aria-label="flow profile"' in flows
            assert client.get("/health").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, seen + rest
    assert "dashboard stopped" in rest


def test_the_demo_without_serve_ends_with_the_dashboard_url() -> None:
    from services_examples.demo import parse_args

    assert parse_args(["--no-serve"]).serve is False
    assert parse_args(["--serve", "--port", "9000"]).port == 9000
    assert parse_args([]).serve is False  # not a terminal: the tests' stdin is not one
