"""Node failures on the local clusters of ``scripts/cluster.sh`` (``--cluster``): a RabbitMQ
node, or a Redis primary, is stopped, kept down a while and started again (it rejoins its
cluster); one node at a time."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "scripts" / "cluster.sh"
RABBIT_NODES = ("1", "2", "3")


async def harness(*args: str) -> str:
    """Run ``scripts/cluster.sh ARGS``; its stdout (a failure raises with its stderr)."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(HARNESS),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"scripts/cluster.sh {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


async def cluster_urls() -> tuple[str, str]:
    """(AMQP URLs, comma-separated; Redis Cluster URL) of the running local clusters."""
    try:
        out = await harness("status")
    except RuntimeError:
        raise RuntimeError(
            "the local clusters are not running: start them with scripts/cluster.sh start "
            "(make cluster-up)"
        ) from None
    urls = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return urls["ORCH_SERV_CLUSTER_AMQP_URLS"], urls["ORCH_SERV_CLUSTER_REDIS_URL"]


class NodeFailures:
    """Stops a random node (a RabbitMQ node, or with ``redis`` also a Redis primary, in
    turn), keeps it down ``down`` seconds, starts it again."""

    def __init__(self, rng: random.Random, *, redis: bool, down: float) -> None:
        self.rng = rng
        self.kinds = ["rabbit", "redis"] if redis else ["rabbit"]
        self.down = down
        #: Nodes stopped so far, as ``rabbit 2`` or ``redis 7103``.
        self.stopped: list[str] = []

    async def _pick(self, kind: str) -> str:
        if kind == "rabbit":
            return self.rng.choice(RABBIT_NODES)
        primaries = (await harness("primaries")).split()
        if not primaries:
            raise RuntimeError("the Redis Cluster has no primary that answers")
        return self.rng.choice(primaries)

    async def fail_one(self, progress: Callable[[str], None]) -> str:
        """Stop one node, wait, start it again; which node it was."""
        kind = self.kinds[len(self.stopped) % len(self.kinds)]
        which = await self._pick(kind)
        stop = asyncio.ensure_future(harness("node-stop", kind, which))
        try:
            await asyncio.shield(stop)
            self.stopped.append(f"{kind} {which}")
            progress(f"stopped the {kind} node {which} for {self.down:.0f} s")
            await asyncio.sleep(self.down)
        finally:  # also when the session ends meanwhile: the node is started again
            with contextlib.suppress(Exception):
                await stop
            await asyncio.shield(harness("node-start", kind, which))
        progress(f"started the {kind} node {which} again")
        return f"{kind} {which}"
