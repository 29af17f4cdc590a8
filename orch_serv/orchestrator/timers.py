"""The timer loop: claims due timers from the store with a lease and hands them to the engine.

With shard leases (:mod:`orch_serv.orchestrator.shards`) it claims the timers of the shards
this replica holds; without, those of every shard. It sleeps until the earliest due timer
(an in-process timer, not a busy poll), is woken early when this process sets a nearer
timer, and wakes at least every ``poll`` seconds to pick up timers that other replicas set
or left behind when they died.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection

from orch_serv.background import Background
from orch_serv.exceptions import OrchServError
from orch_serv.logs import get_logger
from orch_serv.orchestrator.shards import ShardLeases
from orch_serv.store.base import RunStore
from orch_serv.store.timers import TimerId

log = get_logger("timers")

TimerHandler = Callable[[TimerId], Awaitable[None]]


class TimerLoop:
    """Claims and dispatches due timers until stopped."""

    def __init__(
        self,
        store: RunStore,
        handler: TimerHandler,
        *,
        clock: Callable[[], float],
        lease: float = 30.0,
        poll: float = 1.0,
        batch: int = 256,
        concurrency: int = 64,
        shards: ShardLeases | None = None,
    ) -> None:
        self.store = store
        #: The shards whose timers this loop claims (None: every shard).
        self.shards = shards
        self._held: frozenset[int] | None = None
        #: Shards another replica holds, with a timer this one set that is due soon.
        self._borrowed: dict[int, float] = {}
        self._claiming = False
        self.handler = handler
        self.clock = clock
        self.lease = lease
        self.poll = poll
        self.batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._next_wake = float("inf")
        self._task = Background(self._loop, "orch_serv-timers")
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start the loop in the background."""
        self._task.start()

    async def stop(self) -> None:
        """Stop claiming; timers being handled finish (or fall due again after the lease)."""
        await self._task.stop()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self.shards is not None:
            await self.shards.release()

    @property
    def busy(self) -> bool:
        """True while timers are being claimed or handled (a claimed timer is re-scored to
        its lease's end until its handler releases it: the test kit must not take that for
        the next timer and jump its clock there)."""
        return bool(self._running) or self._claiming

    def poke(self, due: float | None = None, run_id: str | None = None) -> None:
        """A timer due at ``due`` was set (for ``run_id``): wake up if that is sooner than
        planned. A timer due within ``poll`` in a shard another replica holds is claimed by
        this one at its due time (the holder would see it only at its next poll): a wait or
        group check made due now by this replica runs now, as with one replica."""
        if (
            run_id is not None
            and self.shards is not None
            and due is not None
            and due <= self.clock() + self.poll  # most timers are not that soon: no hashing
        ):
            shard = self.shards.shard_of(run_id)
            if self._held is None or shard not in self._held:
                self._borrowed[shard] = min(due, self._borrowed.get(shard, due))
        if due is None or due < self._next_wake:
            self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                claimed = await self.tick()
                if claimed >= self.batch:
                    continue  # more are due right now
                await self._sleep()
            except OrchServError as exc:
                log.warning("timer_loop_error", error=str(exc))
                await self._sleep(min(self.poll, 1.0))

    async def tick(self) -> int:
        """Claim what is due now and start handling it; returns how many were claimed."""
        self._claiming = True
        try:
            now = self.clock()
            wanted: Collection[int] | None = None
            if self.shards is not None:
                self._held = await self.shards.current()
                due_now = {n for n, due in self._borrowed.items() if due <= now}
                for n in due_now:
                    del self._borrowed[n]
                wanted = self._held | due_now
            claimed = await self.store.claim_timers(now, self.lease, self.batch, wanted)
            for member, lease_ms in claimed:
                await self._slots.acquire()
                task = asyncio.create_task(self._handle(member, lease_ms))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        finally:
            self._claiming = False
        return len(claimed)

    async def _sleep(self, cap: float | None = None) -> None:
        now = self.clock()
        try:
            due = await self.store.next_timer_due(self._held)
        except OrchServError as exc:  # Redis away (a failover): look again after the cap
            log.warning("timer_loop_error", error=str(exc))
            due = None
        wait = self.poll if cap is None else cap
        if self._borrowed:
            due = (
                min(due, *self._borrowed.values())
                if due is not None
                else min(self._borrowed.values())
            )
        if due is not None:
            wait = min(wait, max(0.0, due - now))
        self._next_wake = now + wait
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._wake.wait()
        self._next_wake = float("inf")

    async def _handle(self, member: str, lease_ms: int) -> None:
        try:
            try:
                timer = TimerId.parse(member)
            except ValueError:
                log.warning("timer_unreadable", member=member)
            else:
                await self.handler(timer)
            await self.store.release_timer(member, lease_ms)
        except OrchServError as exc:
            # Not released: the lease runs out and the timer falls due again.
            log.warning("timer_failed", member=member, error=str(exc))
        except Exception:
            log.exception("timer_crashed", member=member)
        finally:
            self._slots.release()
