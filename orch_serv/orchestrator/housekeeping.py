"""An orchestrator's housekeeping, every ``housekeeping_interval_seconds``: drop index entries
of expired runs, and recover stranded runs (a client that died after creating a run, or after a
retry's transition, never sent its START or RESUME)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from orch_serv.background import Background
from orch_serv.exceptions import FlowNotFound, StoreError, TransportError
from orch_serv.logs import get_logger
from orch_serv.orchestrator.core import Commit, recover, recovery_scope

if TYPE_CHECKING:
    from orch_serv.orchestrator.engine import Engine

log = get_logger("orchestrator")


class Housekeeper:
    """The housekeeping loop of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._task = Background(self._loop, "orch_serv-housekeeping")

    def start(self) -> None:
        """Run the loop in the background."""
        self._task.start()

    async def stop(self) -> None:
        """Stop the loop; idempotent."""
        await self._task.stop()

    async def _loop(self) -> None:
        engine = self.engine
        while True:
            await asyncio.sleep(engine.settings.housekeeping_interval_seconds)
            try:
                removed = await engine.store.housekeeping(engine.clock())
                recovered = await self.recover_stranded()
                log.debug("housekeeping", removed=removed, recovered=recovered)
            except (StoreError, TransportError):
                log.warning("housekeeping_failed", exc_info=True)

    async def recover_stranded(self) -> int:
        """Send the START or RESUME of runs whose client died before sending it, at most
        ``max_start_attempts`` times each; a run whose flow version no orchestrator has, or
        whose message was never taken, ends FAILED. Safe to repeat and to race with the
        client: the transition it leads to applies once."""
        engine = self.engine
        settings = engine.settings
        stranded = await engine.store.stranded(engine.clock() - settings.stranded_after_seconds)
        for record in stranded:
            missing = None
            try:
                await engine.definitions.get(record.kind, record.flow, record.version)
            except FlowNotFound as exc:  # nobody can run it: end it rather than resend forever
                missing = exc.message
            sent = await engine.store.count_recovery(record.run_id, recovery_scope(record))
            decision = recover(
                record,
                engine.clock(),
                missing=missing,
                sent=sent,
                max_attempts=settings.max_start_attempts,
            )
            if isinstance(decision, Commit):
                error = decision.change.fields.get("error") or {}
                log.warning(
                    "stranded_run_failed", run_id=record.run_id, reason=error.get("message")
                )
            else:
                kind = decision.message.kind.value
                log.info("stranded_run_recovered", run_id=record.run_id, kind=kind)
            await engine.apply(decision)
        return len(stranded)


__all__ = ["Housekeeper"]
