"""Asking RabbitMQ, read-only, what a stuck run waits for (for ``status`` and ``--watch``)."""

from __future__ import annotations

from types import TracebackType

from orch_serv.backends import open_transport
from orch_serv.cli.common import err
from orch_serv.constants import Phase
from orch_serv.exceptions import TransportError
from orch_serv.orchestrator.waiting import Waiting, waiting_for
from orch_serv.settings import Settings
from orch_serv.store.base import RunRecord, RunStore
from orch_serv.transport.base import Transport


class QueueProbe:
    """Opens a transport that declares nothing, the first time a run waits in a queue (a
    finished or started run needs no RabbitMQ at all); a broker that cannot be reached is
    said once on stderr, and the status is still shown from Redis."""

    def __init__(self, config: Settings) -> None:
        self._config = config
        self._transport: Transport | None = None
        self._unreachable = False

    async def __aenter__(self) -> QueueProbe:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def waiting(self, record: RunRecord, store: RunStore) -> Waiting | None:
        """What ``record`` waits for when its step is QUEUED or DISPATCHED, else None."""
        if record.done or record.phase not in (Phase.QUEUED, Phase.DISPATCHED):
            return None
        transport = await self._connect()
        if transport is None:
            return None
        try:
            return await waiting_for(record, store, transport)
        except TransportError as exc:
            err.print(f"warning: cannot ask RabbitMQ about the queue: {exc}", highlight=False)
            return None

    async def _connect(self) -> Transport | None:
        if self._transport is None and not self._unreachable:
            try:
                self._transport = await open_transport(self._config, declare=False)
            except TransportError as exc:
                self._unreachable = True
                err.print(
                    f"warning: cannot ask RabbitMQ what the run waits for: {exc}",
                    highlight=False,
                )
        return self._transport
