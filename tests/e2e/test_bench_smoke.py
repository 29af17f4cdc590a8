"""The benchmark harness runs end to end with tiny counts, so it never rots. It asserts the
report's shape, never a speed (figures belong in docs/performance.md, not in tests)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Celery is left out to keep this under a minute; Dramatiq and taskiq start fast.
SYSTEMS = ("raw", "orch_serv", "dramatiq", "taskiq")


def test_bench_smoke_writes_the_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--systems",
            *SYSTEMS,
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert set(report["medians"]) == {f"{s}@{n}" for s in SYSTEMS for n in (1, 10)}
    for figures in report["medians"].values():
        assert figures["steps_per_s"] > 0 and figures["flow_latency_ms_p50"] > 0
        assert figures["cpu_us_per_step_with_driver"] >= figures["cpu_us_per_step"] >= 0
    for peer in ("raw", "dramatiq", "taskiq"):
        assert f"orch_serv/{peer} steps/s @10" in report["ratios"]
        assert f"orch_serv/{peer} serial flow latency p50" in report["ratios"]
    assert report["retention"]["redis_bytes_per_finished_run"] > 0
    table = (tmp_path / "bench.md").read_text()
    for system in SYSTEMS:
        assert f"| {system} | 10 |" in table


@pytest.mark.parametrize("module", ["bench.dramatiq_pipeline", "bench.taskiq_pipeline"])
@pytest.mark.parametrize(("flows", "inflight"), [(0, 1), (1, 0)])
def test_peer_runners_refuse_empty_counts(module: str, flows: int, inflight: int) -> None:
    run = importlib.import_module(module).run
    with pytest.raises(ValueError, match="flows and inflight must be >= 1"):
        run(flows, inflight, namespace="bench_refused")
