"""A test kit for flows: the orchestrator and its services in one process, on the embedded
backends (the in-memory broker and fakeredis running the real Lua scripts), with a clock
the test controls, so timeouts, retry back-off and run deadlines fire instantly.

::

    from orch_serv.testing import FlowTestKit

    async def test_ingest(tmp_path):
        async with FlowTestKit(orchestrator) as kit:
            record = await kit.run("ingest", {"path": "data.csv"})
            assert record.state is RunState.SUCCEEDED
            await kit.assert_history(record.run_id, ["run_created", "run_started", ...])

While nothing is in flight and a run waits for a timer, :meth:`FlowTestKit.wait` moves the
clock straight to that timer (time skipping). While a handler is running, time stands still
until the test calls :meth:`FlowTestKit.advance`.

With pytest, add ``pytest_plugins = ["orch_serv.testing"]`` to a ``conftest.py`` to get the
``orch_serv_kit`` fixture: ``kit = await orch_serv_kit(orchestrator)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Self

from orch_serv.constants import EventKind, Phase, RunState
from orch_serv.orchestrator.app import Orchestrator, Running
from orch_serv.settings import Settings
from orch_serv.store.base import Event, RunRecord
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.memory import MemoryTransport

#: Virtual time starts here (2026-01-01T00:00:00Z), far from the real clock on purpose.
EPOCH = 1_767_225_600.0


class VirtualClock:
    """A clock that moves only when told to. Call it to read the time."""

    def __init__(self, start: float = EPOCH) -> None:
        self._now = start
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self._now

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the time moves."""
        self._listeners.append(listener)

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        for listener in self._listeners:
            listener()

    def advance_to(self, when: float) -> None:
        """Move the time forward to ``when`` (no-op if it is already later)."""
        self.advance(max(0.0, when - self._now))


class FlowTestKit:
    """An orchestrator and its services in this process, on embedded backends."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        settings: Settings | None = None,
        clock: VirtualClock | None = None,
        time_skipping: bool = True,
    ) -> None:
        self.orchestrator = orchestrator
        self.clock = clock or VirtualClock()
        self.time_skipping = time_skipping
        name = f"kit_{uuid.uuid4().hex[:12]}"
        base = settings or Settings()
        self.settings = base.model_copy(
            update={
                "amqp_url": f"memory://{name}",
                "redis_url": f"memory://{name}",
                "namespace": name,
                "key_prefix": name,
                "shutdown_grace_seconds": min(base.shutdown_grace_seconds, 1.0),
            }
        )
        self._stack = contextlib.AsyncExitStack()
        self._running: Running | None = None
        self._transport: MemoryTransport | None = None

    async def __aenter__(self) -> Self:
        url = self.settings.amqp_url or ""
        self._transport = await MemoryTransport.connect(
            url, namespace=self.settings.namespace, batch_max=self.settings.publish_batch_max
        )
        store = await RedisRunStore.connect(
            url,
            prefix=self.settings.key_prefix,
            shards=self.settings.shards,
            clock=self.clock,
            retention_seconds=self.settings.retention_seconds,
        )
        self._stack.push_async_callback(store.close)
        self._stack.push_async_callback(self._transport.close)
        self._running = await self._stack.enter_async_context(
            self.orchestrator.attach(
                self._transport, store, self.settings, with_services=True, clock=self.clock
            )
        )
        self.clock.subscribe(lambda: self.running.engine.timers.poke())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def running(self) -> Running:
        """The connected orchestrator (a :class:`~orch_serv.orchestrator.client.Client`)."""
        if self._running is None:
            raise RuntimeError("use the kit inside `async with`")
        return self._running

    # -- driving runs --------------------------------------------------------------------------
    async def start(self, flow: str | None = None, body: Any = None, **kwargs: Any) -> str:
        """Start a run; returns its id."""
        return await self.running.start(flow, body, **kwargs)

    async def run(
        self, flow: str | None = None, body: Any = None, *, timeout: float = 10.0, **kwargs: Any
    ) -> RunRecord:
        """Start a run and wait for its end (skipping time over its timers)."""
        return await self.wait(await self.start(flow, body, **kwargs), timeout=timeout)

    async def wait(self, run_id: str, *, timeout: float = 10.0) -> RunRecord:
        """Wait (at most ``timeout`` real seconds) for the run to finish. When nothing is in
        flight, the clock jumps to the next timer."""
        return await self.until(
            run_id, lambda record: record.done and not record.expired, timeout=timeout
        )

    async def until(
        self,
        run_id: str,
        condition: Callable[[RunRecord], bool],
        *,
        timeout: float = 10.0,
        skip_time: bool | None = None,
    ) -> RunRecord:
        """Wait until the run satisfies ``condition`` (e.g. ``lambda r: r.phase is
        Phase.BACKOFF``); with time skipping unless ``skip_time=False``."""
        skipping = self.time_skipping if skip_time is None else skip_time
        async with asyncio.timeout(timeout):
            while True:
                record = await self.running.get(run_id)
                if condition(record):
                    return record
                if skipping and self.idle():
                    due = await self.running.store.next_timer_due()
                    if due is not None and due > self.clock():
                        self.clock.advance_to(due)
                await self._activity()

    async def advance(self, seconds: float) -> None:
        """Move the clock forward and let whatever falls due run until things are quiet."""
        self.clock.advance(seconds)
        await self.settle()

    async def settle(self, *, timeout: float = 10.0) -> None:
        """Wait until the orchestrator has nothing to do: no message queued anywhere, none
        in its hands, no timer being handled (handlers may still be running)."""
        async with asyncio.timeout(timeout):
            await self._activity()
            while not self.settled():
                await self._activity()

    def settled(self) -> bool:
        """No message queued, none held by the orchestrator, no timer being handled."""
        assert self._transport is not None
        broker = self._transport.broker
        return (
            broker.ready() == 0
            and broker.unacked(self._transport.topology.orchestrator_queue) == 0
            and not self.running.engine.timers.busy
        )

    def idle(self) -> bool:
        """Settled, and no handler running: only a timer can move things on."""
        assert self._transport is not None
        return self.settled() and self._transport.broker.unacked() == 0

    async def _activity(self) -> None:
        assert self._transport is not None
        activity = self._transport.broker.activity
        activity.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.01):
                await activity.wait()

    # -- reading runs ------------------------------------------------------------------------
    async def events(self, run_id: str) -> list[Event]:
        """The run's history."""
        return await self.running.events(run_id)

    async def history(self, run_id: str) -> list[str]:
        """The run's event kinds, in order."""
        return [e.kind.value for e in await self.events(run_id)]

    async def assert_history(
        self, run_id: str, expected: Sequence[str | EventKind], *, exact: bool = False
    ) -> None:
        """Assert the history contains ``expected`` kinds in that order (as a subsequence,
        or exactly with ``exact``); the message shows the whole history."""
        kinds = await self.history(run_id)
        wanted = [str(k.value if isinstance(k, EventKind) else k) for k in expected]
        if exact:
            ok = kinds == wanted
        else:
            remaining = iter(kinds)
            ok = all(any(k == w for k in remaining) for w in wanted)
        if not ok:
            raise AssertionError(f"history of {run_id} is {kinds}, expected {wanted}")


KitFactory = Callable[..., Awaitable[FlowTestKit]]

try:  # the pytest fixture, when pytest is around
    import pytest

    try:
        import pytest_asyncio

        _fixture: Any = pytest_asyncio.fixture
    except ImportError:  # pragma: no cover - plain pytest with asyncio_mode=auto elsewhere
        _fixture = pytest.fixture

    @_fixture  # type: ignore[untyped-decorator]
    async def orch_serv_kit() -> AsyncIterator[KitFactory]:
        """A factory of started :class:`FlowTestKit`s, stopped after the test."""
        kits: list[FlowTestKit] = []

        async def make(orchestrator: Orchestrator, **kwargs: Any) -> FlowTestKit:
            kit = FlowTestKit(orchestrator, **kwargs)
            await kit.__aenter__()
            kits.append(kit)
            return kit

        yield make
        for kit in reversed(kits):
            await kit.__aexit__(None, None, None)

except ImportError:  # pragma: no cover
    pass

__all__ = ["EPOCH", "FlowTestKit", "KitFactory", "Phase", "RunState", "VirtualClock"]
