"""The chaos loop: SIGKILLs, connection cuts and (on the local clusters) node failures."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

from chaos.nodes import NodeFailures
from chaos.processes import Fleet
from chaos.proxy import ProxyProcess

Progress = Callable[[str], None]


class Chaos:
    """A SIGKILL of a random process (restarted at once) every ``kill_every`` seconds, a cut
    of every proxied connection every ``cut_every`` seconds (at most ``max_cuts``), and, with
    ``nodes``, a node failure every ``node_every`` seconds; each interval is drawn between
    half and one and a half times its mean, 0 meaning never. A process that died on its own
    is restarted (and counted by the fleet)."""

    def __init__(
        self,
        fleet: Fleet,
        proxies: Sequence[ProxyProcess],
        progress: Progress,
        *,
        kill_every: float,
        cut_every: float,
        max_cuts: int | None = None,
        nodes: NodeFailures | None = None,
        node_every: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.fleet = fleet
        self.proxies = list(proxies)
        self.progress = progress
        self.kill_every = kill_every
        self.cut_every = cut_every if self.proxies else 0.0
        self.max_cuts = max_cuts
        self.nodes = nodes
        self.node_every = node_every if nodes is not None else 0.0
        self.rng = random.Random(seed)
        #: Cuts done (each cuts every proxy), and connections aborted by them.
        self.cuts = 0
        self.connections_cut = 0

    def _next(self, every: float) -> float:
        return time.monotonic() + every * self.rng.uniform(0.5, 1.5) if every else float("inf")

    async def run(self) -> None:
        """Run until cancelled (a failure of the loop itself raises)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._processes())
            if self.node_every:
                group.create_task(self._nodes())

    async def cut(self) -> int:
        """Cut every connection through every proxy; how many were cut."""
        counts = await asyncio.gather(*(proxy.cut() for proxy in self.proxies))
        self.cuts += 1
        self.connections_cut += sum(counts)
        return sum(counts)

    async def _processes(self) -> None:
        next_kill = self._next(self.kill_every)
        next_cut = self._next(self.cut_every)
        while True:
            wake = min(next_kill, next_cut, time.monotonic() + 0.5)
            await asyncio.sleep(max(0.0, wake - time.monotonic()))
            for exit_ in await self.fleet.revive():
                self.progress(f"{exit_} had exited on its own: restarted")
            now = time.monotonic()
            if now >= next_kill:
                self.progress(f"SIGKILL {await self.fleet.kill_random(self.rng)} (restarted)")
                next_kill = self._next(self.kill_every)
            if now >= next_cut:
                self.progress(f"cut {await self.cut()} broker connections")
                done = self.max_cuts is not None and self.cuts >= self.max_cuts
                next_cut = float("inf") if done else self._next(self.cut_every)

    async def _nodes(self) -> None:
        assert self.nodes is not None
        while True:
            await asyncio.sleep(max(0.0, self._next(self.node_every) - time.monotonic()))
            await self.nodes.fail_one(self.progress)
