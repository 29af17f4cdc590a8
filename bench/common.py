"""What every benchmarked system reports, and how it is summarised."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from typing import Any

#: The servers (``BENCH_AMQP_URL`` / ``BENCH_REDIS_URL`` name others, e.g. the local clusters
#: of scripts/cluster.sh: a list of AMQP nodes and a ``redis+cluster://`` URL).
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: One AMQP node, for the benchmark's own admin connections.
AMQP_NODE = AMQP_URL.split(",")[0]
STEPS_PER_FLOW = 3


@dataclass
class Result:
    """One measured run of one system at one level of concurrency."""

    system: str
    inflight: int
    flows: int
    seconds: float
    step_latencies_ms: list[float] = field(default_factory=list)
    flow_latencies_ms: list[float] = field(default_factory=list)
    #: CPU seconds (user + system) per process role, over the measured interval.
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    #: Anything else a system measured (e.g. Redis memory per finished run).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return self.flows * STEPS_PER_FLOW


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(result: Result) -> dict[str, Any]:
    """The figures the report shows."""
    return {
        "system": result.system,
        "inflight": result.inflight,
        "flows": result.flows,
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "steps_per_s": round(result.steps / result.seconds, 1),
        "flows_per_s": round(result.flows / result.seconds, 1),
        "step_latency_ms_p50": round(percentile(result.step_latencies_ms, 50), 3),
        "step_latency_ms_p99": round(percentile(result.step_latencies_ms, 99), 3),
        "flow_latency_ms_p50": round(percentile(result.flow_latencies_ms, 50), 3),
        "flow_latency_ms_p99": round(percentile(result.flow_latencies_ms, 99), 3),
        "cpu_seconds": {k: round(v, 3) for k, v in result.cpu_seconds.items()},
        "cpu_percent": {
            k: round(100 * v / result.seconds, 1) for k, v in result.cpu_seconds.items()
        },
        **cpu_per_step(result),
        **result.extra,
    }


def cpu_per_step(result: Result) -> dict[str, float]:
    """CPU microseconds per step summed over every process measured (workers, brokers,
    Redis), without and with the driver (the load generator)."""
    if not result.cpu_seconds or not result.steps:
        return {}
    total = sum(result.cpu_seconds.values())
    driver = result.cpu_seconds.get("driver", 0.0)
    return {
        "cpu_us_per_step": round(1e6 * (total - driver) / result.steps, 1),
        "cpu_us_per_step_with_driver": round(1e6 * total / result.steps, 1),
    }


def median_of(rows: list[dict[str, Any]], key: str) -> float:
    """Median of one figure over repetitions."""
    return float(statistics.median(r[key] for r in rows))


def server_processes() -> dict[str, Any]:
    """psutil handles of the local RabbitMQ and Redis servers (to report their CPU too)."""
    import psutil  # type: ignore[import-untyped]

    found: dict[str, Any] = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        name = proc.info["name"] or ""
        if name.startswith("beam") and "rabbitmq" not in found:
            found["rabbitmq"] = proc
        elif name.startswith("redis-server") and "redis" not in found:
            found["redis"] = proc
    return found


def cpu_seconds(processes: dict[str, Any]) -> dict[str, float]:
    """User + system CPU seconds of each process so far (with its children)."""
    totals: dict[str, float] = {}
    for role, proc in processes.items():
        try:
            times = proc.cpu_times()
            total = times.user + times.system
            for child in proc.children(recursive=True) if role != "driver" else ():
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        except Exception:
            total = 0.0
        totals[role] = total
    return totals


def process_tree(pid: int) -> list[Any]:
    """psutil handles of a process and all its descendants (empty if it is gone)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu(processes: list[Any]) -> dict[int, float]:
    """CPU seconds (user + system) per pid; processes that are gone are left out."""
    import psutil

    seconds: dict[int, float] = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = float(times.user + times.system)
    return seconds


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two ``tree_cpu`` snapshots (processes born in between count
    from zero)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def stop_tree(process: Any, tree: list[Any], timeout: float = 30.0) -> None:
    """SIGTERM a worker (a ``subprocess.Popen``), wait, kill it if it lingers, then kill any
    child of it left behind."""
    import subprocess

    import psutil

    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    for child in tree:
        if child.pid == process.pid:
            continue
        try:
            child.wait(timeout=5)
        except psutil.TimeoutExpired:
            child.kill()
        except psutil.NoSuchProcess:
            pass
