"""The timer loop lives through a Redis outage (a Sentinel failover, a restart): every call
failing for a while must not end the loop, and the timers due meanwhile fire once Redis is
back. (Found by the Sentinel failover test, where the loop died on its second error.)"""

from __future__ import annotations

import asyncio
from typing import cast

from orch_serv.exceptions import StoreError
from orch_serv.orchestrator.timers import TimerLoop
from orch_serv.store.base import RunStore
from orch_serv.store.timers import TimerId


class FlakyTimers:
    """The timer calls of a store that fails ``failures`` times before it answers."""

    def __init__(self, failures: int, member: str) -> None:
        self.failures = failures
        self.member: str | None = member
        self.errors = 0

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.errors += 1
            raise StoreError("redis claim_timers failed: No master found for 'osk'")

    async def claim_timers(
        self, now: float, lease: float, limit: int, shards: object = None
    ) -> list[tuple[str, int]]:
        self._maybe_fail()
        member, self.member = self.member, None
        return [] if member is None else [(member, 1)]

    async def next_timer_due(self, shards: object = None) -> float | None:
        self._maybe_fail()
        return None

    async def release_timer(self, member: str, lease_ms: int) -> None:
        self._maybe_fail()


async def test_the_loop_outlives_an_outage_and_fires_what_fell_due() -> None:
    member = "r1|wait|run|1|1"
    store = FlakyTimers(failures=6, member=member)
    fired: asyncio.Future[TimerId] = asyncio.get_running_loop().create_future()

    async def handler(timer: TimerId) -> None:
        if not fired.done():
            fired.set_result(timer)

    loop = TimerLoop(cast(RunStore, store), handler, clock=lambda: 0.0, poll=0.01)
    loop.start()
    try:
        timer = await asyncio.wait_for(fired, timeout=10)
    finally:
        await loop.stop()
    assert str(timer) == member
    assert store.errors == 6  # every failure was met, none ended the loop
