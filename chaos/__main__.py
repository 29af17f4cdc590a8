"""``python -m chaos``: a chaos session against RabbitMQ and Redis; prints a table and a JSON
report and exits 1 when a run was lost, advanced twice or ended with a wrong result."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from chaos.audit import Report
from chaos.nodes import cluster_urls
from chaos.runner import ChaosConfig, session
from orch_serv.settings import LOCAL_AMQP_URL, LOCAL_REDIS_URL


def _parser() -> argparse.ArgumentParser:
    defaults = ChaosConfig(prefix="unused")
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    add = parser.add_argument
    add("--runs", type=int, default=defaults.runs, help="runs of the 3-step flow (%(default)s)")
    add(
        "--orchestrators",
        type=int,
        default=defaults.orchestrators,
        help="orchestrator processes (%(default)s)",
    )
    add("--services", type=int, default=defaults.services, help="service processes (%(default)s)")
    add(
        "--kill-every",
        type=float,
        default=defaults.kill_every,
        metavar="SECONDS",
        help="mean time between two SIGKILLs of a random process, 0 for none (%(default)s)",
    )
    add(
        "--cut-every",
        type=float,
        default=defaults.cut_every,
        metavar="SECONDS",
        help="mean time between two cuts of every broker connection, 0 for none (%(default)s)",
    )
    add("--max-cuts", type=int, default=None, help="stop cutting after this many cuts")
    add(
        "--proxy",
        action=argparse.BooleanOptionalAction,
        default=defaults.proxy,
        help="put the processes behind the cutting TCP proxy (--no-proxy: no cuts)",
    )
    add("--rate", type=float, default=defaults.rate, help="runs started a second, 0: no limit")
    add(
        "--drain-timeout",
        type=float,
        default=defaults.drain_timeout,
        metavar="SECONDS",
        help="a run not terminal this long after the starts counts as lost (%(default)s)",
    )
    add(
        "--amqp-url",
        default=None,
        help=f"RabbitMQ, or a comma-separated list of nodes (default: $ORCH_SERV_AMQP_URL, "
        f"else {LOCAL_AMQP_URL}; with --cluster, the local cluster's nodes)",
    )
    add(
        "--redis-url",
        default=None,
        help=f"Redis (default: $ORCH_SERV_REDIS_URL, else {LOCAL_REDIS_URL}; with "
        "--cluster, the local Redis Cluster)",
    )
    add(
        "--cluster",
        action="store_true",
        help="run on the local clusters of scripts/cluster.sh (started before): quorum "
        "queues, one proxy per RabbitMQ node, and node failures",
    )
    add(
        "--node-every",
        type=float,
        default=defaults.node_every,
        metavar="SECONDS",
        help="--cluster: mean time between two node failures, 0 for none (%(default)s)",
    )
    add(
        "--node-down",
        type=float,
        default=defaults.node_down,
        metavar="SECONDS",
        help="--cluster: how long a stopped node stays down (%(default)s)",
    )
    add("--prefix", default=None, help="queue namespace and Redis key prefix (a fresh one)")
    add("--seed", type=int, default=None, help="seed of the chaos loop's choices")
    add("--log-dir", type=Path, default=None, help="keep the processes' stderr here")
    add("--json", type=Path, default=None, help="also write the JSON report to this file")
    return parser


def _urls(amqp_url: str | None, redis_url: str | None, *, cluster: bool) -> dict[str, Any]:
    """The servers: the options, else the local clusters (``cluster``), else the
    environment, else the local servers."""
    if cluster:
        cluster_amqp, cluster_redis = asyncio.run(cluster_urls())
        redis = redis_url or cluster_redis
        return {
            "amqp_url": amqp_url or cluster_amqp,
            "redis_url": redis,
            "redis_cluster": redis == cluster_redis,
        }
    return {
        "amqp_url": amqp_url or os.environ.get("ORCH_SERV_AMQP_URL", LOCAL_AMQP_URL),
        "redis_url": redis_url or os.environ.get("ORCH_SERV_REDIS_URL", LOCAL_REDIS_URL),
    }


async def _main(config: ChaosConfig) -> Report:
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):  # both stop the session and clean up
        asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    return await session(config)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the session, print the report; the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    options: dict[str, Any] = {
        "runs": args.runs,
        "orchestrators": args.orchestrators,
        "services": args.services,
        "kill_every": args.kill_every,
        "cut_every": args.cut_every,
        "max_cuts": args.max_cuts,
        "proxy": args.proxy,
        "rate": args.rate,
        "drain_timeout": args.drain_timeout,
        "seed": args.seed,
        "log_dir": args.log_dir,
        "cluster": args.cluster,
        "node_every": args.node_every,
        "node_down": args.node_down,
    }
    if args.prefix:
        options["prefix"] = args.prefix
    try:
        options.update(_urls(args.amqp_url, args.redis_url, cluster=args.cluster))
        config = ChaosConfig(**options)
    except (ValueError, RuntimeError) as exc:
        parser.error(str(exc))
    try:
        report = asyncio.run(_main(config))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("chaos: interrupted (processes stopped, keys and queues removed)", file=sys.stderr)
        return 130
    print(report.table())
    text = json.dumps(report.to_json_dict(), indent=2, default=str)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
