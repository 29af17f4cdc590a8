"""Cancel notices: a broadcast on the control exchange telling every service process to stop
the work of a run (or of one attempt of one step). Sent by the engine when a clock runs out and
by clients when an operator cancels a run."""

from __future__ import annotations

from typing import Any

from orch_serv.constants import Lane, MessageKind
from orch_serv.exceptions import TransportError
from orch_serv.flow.spec import StepSpec
from orch_serv.logs import get_logger
from orch_serv.messages import ids
from orch_serv.messages.codec import encode
from orch_serv.messages.envelope import Envelope
from orch_serv.orchestrator.core.decision import CancelNotice
from orch_serv.transport.base import Transport

log = get_logger("orchestrator")


async def send_notice(transport: Transport, notice: CancelNotice) -> None:
    """Publish ``notice`` on the control exchange (best effort: a lost notice only means the
    handler runs to its end and its reply is recorded as a late result)."""
    target = notice.message_id
    envelope = Envelope[Any](
        kind=MessageKind.CANCEL,
        message_id=ids.cancel_notice_id(notice.run_id, target),
        run_id=notice.run_id,
        body={"message_id": target},
    )
    try:
        await transport.publish_control(encode(envelope), message_id=envelope.message_id)
    except TransportError:
        log.warning("cancel_notice_failed", run_id=notice.run_id, exc_info=True)


async def send_cancel(
    transport: Transport,
    run_id: str,
    *,
    step: StepSpec | None = None,
    attempt: int = 1,
    lane: Lane = Lane.RUN,
) -> None:
    """Tell every service process to stop the work of ``run_id`` (or of one attempt)."""
    target = None if step is None else ids.command_id(run_id, step.index, attempt, lane)
    await send_notice(transport, CancelNotice(run_id, target))


__all__ = ["send_cancel", "send_notice"]
