"""Status events under a status model: the engine records a status as it is, unless the
run's flow (or the instance itself) names a status model; then the status is set only if the
model's rules allow it, in one atomic check-and-set (``store/statuses.py``). A refused status
is recorded as ``status_refused`` with the rule as its reason, and logged; the message is
settled either way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orch_serv.exceptions import FlowNotFound
from orch_serv.logs import get_logger
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core import RecordStatus
from orch_serv.orchestrator.core.events import refused_status_event
from orch_serv.statusmodel.codes import Code

if TYPE_CHECKING:
    from orch_serv.orchestrator.engine import Disposition, Engine

log = get_logger("orchestrator")


async def record_status(engine: Engine, message: Envelope[Any]) -> Disposition:
    """Record the status event ``message`` carries (see the module's docstring)."""
    decision = engine.clocks.on_status(message)
    statuses = engine.statuses
    if not isinstance(decision, RecordStatus) or statuses is None or not decision.status:
        return await engine.apply(decision)
    from orch_serv.store.statuses import Governed

    try:
        name = (await engine.definitions.of(message)).spec.status_model
        governed = Governed(await statuses.models.get(name) if name else None, False)
    except FlowNotFound:  # no flow named (a foreign service, or an instance's token)
        governed = await statuses.governed(decision.run_id)
    if governed.model is None:
        return await engine.apply(decision)
    outcome = await statuses.set_status(
        decision.run_id,
        decision.status,
        now=engine.clock(),
        event=decision.event,
        record_refusal=refused_status_event(decision.event),
        governed=governed,
    )
    if not outcome.found:
        return f"unknown run {decision.run_id!r}"
    if outcome.code is not Code.SUCCESS:
        log.warning(
            "status_refused",
            status=decision.status,
            model=governed.model.name,
            reason=outcome.code.value,
            finished=outcome.finished or None,
        )
    return None


__all__ = ["record_status"]
