"""What an active run is waiting for: the queue that holds its next message.

A run whose current step is QUEUED waits for an orchestrator (its START or RESUME is in the
orchestrator queue); DISPATCHED, for a process of the step's service (the command is in the
service's queue). When that queue has no consumer the run cannot move, and nothing in the
run says so: :func:`waiting_for` reads the queue's depth and consumers from the broker, so
that ``orch-serv status`` can say "no consumer on queue X: is the service running?".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orch_serv.constants import Phase, RunState
from orch_serv.flow.waits import WaitSpec
from orch_serv.store.base import RunRecord, RunStore
from orch_serv.transport.base import Transport


@dataclass(frozen=True, slots=True)
class Waiting:
    """The queue an active run's next message sits in, as the broker sees it now; or, at a
    wait step, what the run waits for (``role == "wait"``, ``condition``)."""

    #: The queue's name ("" at a wait step, which is in no queue).
    queue: str
    #: Who consumes it: ``orchestrator`` or ``service``; ``wait`` at a wait step.
    role: str
    #: The service of the current step (for ``role == "service"``).
    service: str | None
    #: Messages ready in the queue; None when the queue does not exist.
    messages: int | None
    #: Consumers of the queue; None when the queue does not exist.
    consumers: int | None
    #: At a wait step: what the run waits for (``signal 'approved'``).
    condition: str | None = None

    @property
    def exists(self) -> bool:
        """Whether the broker has the queue."""
        return self.consumers is not None

    @property
    def hint(self) -> str | None:
        """A plain hint when nothing consumes the queue, else None."""
        if self.consumers or self.condition is not None:
            return None
        who = (
            "an orchestrator"
            if self.role == "orchestrator"
            else f"the service {self.service!r}"
            if self.service
            else "the service"
        )
        missing = "" if self.exists else " (the queue does not exist yet)"
        return f"no consumer on queue {self.queue}{missing}: is {who} running?"

    def describe(self) -> str:
        """``queue X: 3 message(s) ready, 0 consumer(s)`` (or what a wait waits for)."""
        if self.condition is not None:
            return f"{self.condition} (the orchestrators check it)"
        if not self.exists:
            return f"queue {self.queue} does not exist"
        return f"queue {self.queue}: {self.messages} message(s) ready, {self.consumers} consumer(s)"

    def to_json(self) -> dict[str, Any]:
        """The ``waiting`` entry of ``orch-serv status --format json``."""
        return {
            "queue": self.queue,
            "role": self.role,
            "service": self.service,
            "exists": self.exists,
            "messages": self.messages,
            "consumers": self.consumers,
            "hint": self.hint,
            **({"condition": self.condition} if self.condition is not None else {}),
        }


async def waiting_for(record: RunRecord, store: RunStore, transport: Transport) -> Waiting | None:
    """The queue ``record``'s current step waits in (QUEUED: the orchestrator queue;
    DISPATCHED: the step's service queue), with its depth and consumers, or at a wait step
    what it waits for; None for a finished run, a step that a service has started, or one
    backing off."""
    if record.state not in (RunState.PENDING, RunState.RUNNING, RunState.COMPENSATING):
        return None
    topology = transport.topology
    if record.phase is Phase.QUEUED:
        queue, role, service = topology.orchestrator_queue, "orchestrator", None
    elif record.phase is Phase.DISPATCHED:
        spec = await store.get_spec(record.kind, record.flow, record.version)
        if spec is None or not 0 <= record.step < len(spec.steps):
            return None
        wait = spec.steps[record.step].wait
        if wait is not None:  # in no queue: the orchestrators check it
            return Waiting("", "wait", None, None, None, condition=condition(wait))
        group = spec.steps[record.step].group
        if group is not None:  # in no queue: its members are runs of their own
            what = f"{group.kind} group ({group.join}): its member runs"
            return Waiting("", "wait", None, None, None, condition=what)
        service = spec.steps[record.step].service
        queue, role = topology.service_queue(service), "service"
    else:
        return None
    stats = await transport.queue_stats(queue)
    if stats is None:
        return Waiting(queue, role, service, None, None)
    return Waiting(queue, role, service, stats.messages, stats.consumers)


def condition(wait: WaitSpec) -> str:
    """What a wait step waits for, in words: ``signal 'approved'``, ``chart 'lights' machine
    'm1' in red_state or blue_state``."""
    if wait.kind == "signal":
        return f"signal {wait.signal!r}"
    states = " or ".join(wait.states or ())
    machine = f" machine {wait.machine!r}" if wait.machine else ""
    return f"chart {wait.chart!r}{machine} in {states}"
