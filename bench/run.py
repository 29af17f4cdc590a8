"""The benchmark, in one invocation: the raw aio-pika + redis-py loop, orch_serv, Celery
chains, Dramatiq pipelines and taskiq pipelines, each at 1 and at 500 flows in flight,
several repetitions, on the local RabbitMQ and Redis with the same durability on every side
as far as each allows (persistent messages, publisher confirms, state written to Redis; see
docs/performance.md). CPU per step is summed over every process (workers, RabbitMQ, Redis),
without and with the driver. Then orch_serv with 1,000,000 finished runs retained in Redis
against an empty Redis, and Redis memory per finished run.

    python -m bench.run                 # the full run (make bench)
    python -m bench.run --smoke         # tiny counts, to keep the harness from rotting

Writes bench/results/bench.json and bench/results/bench.md and prints the table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Result, summarize

SYSTEMS = ("raw", "orch_serv", "celery", "dramatiq", "taskiq")
MODULES = {
    "raw": "bench.raw_baseline",
    "orch_serv": "bench.orch",
    "celery": "bench.celery_chain",
    "dramatiq": "bench.dramatiq_pipeline",
    "taskiq": "bench.taskiq_pipeline",
}
#: The peers orch_serv is compared with.
PEERS = ("raw", "celery", "dramatiq", "taskiq")


def _runner(system: str) -> Callable[..., Result] | None:
    try:
        module = importlib.import_module(MODULES[system])
    except ImportError as exc:  # celery, dramatiq and taskiq are in the optional bench extra
        print(f"skipping {system}: {exc}", file=sys.stderr)
        return None
    runner: Callable[..., Result] = module.run
    return runner


def _median(rows: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return round(float(statistics.median(values)), 3) if values else float("nan")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    plan = [(1, args.serial_flows), (args.inflight, args.flows)]
    rows: list[dict[str, Any]] = []
    for inflight, flows in plan:
        for system in args.systems:
            runner = _runner(system)
            if runner is None:
                continue
            for rep in range(args.reps):
                namespace = f"bench_{system}_{os.getpid()}_{inflight}_{rep}"
                row = summarize(runner(flows, inflight, namespace=namespace))
                row["rep"] = rep
                rows.append(row)
                print(
                    f"{system:>9} inflight {inflight:>3} rep {rep}: "
                    f"{row['steps_per_s']:>7.0f} steps/s, step p50 "
                    f"{row['step_latency_ms_p50']:.2f} ms",
                    file=sys.stderr,
                )
    retention = []
    orch = _runner("orch_serv")
    if orch is not None and args.retained:
        for prefill in (0, args.retained):
            for rep in range(max(1, min(args.reps, 2))):
                namespace = f"bench_retained_{os.getpid()}_{prefill}_{rep}"
                row = summarize(
                    orch(args.flows, args.inflight, namespace=namespace, prefill=prefill)
                )
                row["rep"] = rep
                retention.append(row)
                print(
                    f"orch_serv with {prefill} retained runs: {row['steps_per_s']:.0f} steps/s",
                    file=sys.stderr,
                )
    return {"rows": rows, "retention": retention}


def report(data: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in data["rows"]:
        groups.setdefault((row["system"], row["inflight"]), []).append(row)
    medians = {
        f"{system}@{inflight}": {
            key: _median(rows, key)
            for key in (
                "steps_per_s",
                "flows_per_s",
                "step_latency_ms_p50",
                "step_latency_ms_p99",
                "flow_latency_ms_p50",
                "flow_latency_ms_p99",
                "cpu_us_per_step",
                "cpu_us_per_step_with_driver",
            )
        }
        | {"cpu_percent": rows[len(rows) // 2]["cpu_percent"], "reps": len(rows)}
        for (system, inflight), rows in groups.items()
    }
    ratios: dict[str, float] = {}
    for inflight in sorted({i for _, i in groups}):
        orch = medians.get(f"orch_serv@{inflight}")
        for other in PEERS:
            base = medians.get(f"{other}@{inflight}")
            if orch and base and base["steps_per_s"]:
                ratios[f"orch_serv/{other} steps/s @{inflight}"] = round(
                    orch["steps_per_s"] / base["steps_per_s"], 2
                )
    serial_orch, serial_raw = medians.get("orch_serv@1"), medians.get("raw@1")
    if serial_orch and serial_raw and serial_raw["step_latency_ms_p50"]:
        ratios["orch_serv/raw serial step latency p50"] = round(
            serial_orch["step_latency_ms_p50"] / serial_raw["step_latency_ms_p50"], 2
        )
    for other in PEERS:
        base = medians.get(f"{other}@1")
        if serial_orch and base and base["flow_latency_ms_p50"]:
            ratios[f"orch_serv/{other} serial flow latency p50"] = round(
                serial_orch["flow_latency_ms_p50"] / base["flow_latency_ms_p50"], 2
            )
    retention = data["retention"]
    retained: dict[str, Any] = {}
    if retention:
        empty = [r for r in retention if r["retained_runs_before"] == 0]
        full = [r for r in retention if r["retained_runs_before"] > 0]
        retained = {
            "retained_runs": args.retained,
            "steps_per_s_empty": _median(empty, "steps_per_s"),
            "steps_per_s_retained": _median(full, "steps_per_s"),
            "redis_bytes_per_finished_run": _median(full, "redis_bytes_per_retained_run"),
        }
        if retained["steps_per_s_empty"]:
            retained["retained/empty"] = round(
                retained["steps_per_s_retained"] / retained["steps_per_s_empty"], 3
            )
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "medians": medians,
        "ratios": ratios,
        "retention": retained,
        "runs": data["rows"] + retention,
    }


def markdown(result: dict[str, Any]) -> str:
    header = "| system | in flight | steps/s | flows/s | step p50 / p99 ms | flow p50 / p99 ms |"
    header += " CPU µs/step (w/o / with driver) | CPU % |"
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---|"]
    for key, m in result["medians"].items():
        system, inflight = key.split("@")
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in m["cpu_percent"].items())
        lines.append(
            f"| {system} | {inflight} | {m['steps_per_s']:.0f} | {m['flows_per_s']:.0f} | "
            f"{m['step_latency_ms_p50']:.2f} / {m['step_latency_ms_p99']:.2f} | "
            f"{m['flow_latency_ms_p50']:.2f} / {m['flow_latency_ms_p99']:.2f} | "
            f"{m['cpu_us_per_step']:.0f} / {m['cpu_us_per_step_with_driver']:.0f} | {cpu} |"
        )
    lines.append("")
    for name, value in result["ratios"].items():
        lines.append(f"- {name}: **{value}x**")
    if result["retention"]:
        r = result["retention"]
        lines.append(
            f"- with {r['retained_runs']:,} finished runs retained: "
            f"{r['steps_per_s_retained']:.0f} steps/s vs {r['steps_per_s_empty']:.0f} on an "
            f"empty Redis (**{r.get('retained/empty', float('nan'))}x**)"
        )
        lines.append(
            f"- Redis memory per finished 3-step run: **{r['redis_bytes_per_finished_run']:.0f}"
            f" bytes** (INFO used_memory delta over the {r['retained_runs']:,} retained runs)"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts (CI)")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--flows", type=int, default=3000, help="flows at full concurrency")
    parser.add_argument("--serial-flows", type=int, default=300, help="flows at 1 in flight")
    parser.add_argument("--inflight", type=int, default=500)
    parser.add_argument("--retained", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    if args.smoke:
        args.reps, args.flows, args.serial_flows = 1, 30, 10
        args.inflight, args.retained = 10, 1000
    result = report(measure(args), args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(result, indent=2))
    table = markdown(result)
    (args.out / "bench.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
