"""The benchmark harness runs end to end with tiny counts, so it never rots. It asserts the
report's shape, never a speed (figures belong in docs/performance.md, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_writes_the_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--systems",
            "raw",
            "orch_serv",
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
    assert set(report["medians"]) == {"raw@1", "orch_serv@1", "raw@10", "orch_serv@10"}
    for figures in report["medians"].values():
        assert figures["steps_per_s"] > 0 and figures["flow_latency_ms_p50"] > 0
    assert "orch_serv/raw steps/s @10" in report["ratios"]
    assert report["retention"]["redis_bytes_per_finished_run"] > 0
    assert "| orch_serv | 10 |" in (tmp_path / "bench.md").read_text()
