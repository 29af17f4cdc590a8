"""Every delivery is settled, whatever its handler does.

A delivery left unsettled holds a slot of its consumer's prefetch window for as long as the
connection lives; enough of them (a flood of messages that make a handler raise) and no real
run advances. Both transports therefore run every delivery handler through
:func:`run_guarded`: if the handler raises (anything but cancellation) and has not settled the
delivery, the transport dead-letters it with the reason ``internal error: <type>: <message>``;
if even that copy cannot be published, :func:`settle_poison` rejects the delivery without
requeue so that the broker routes it to the queue's dead-letter exchange (service and
orchestrator queues are declared with one; the broker records why in ``x-death``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from orch_serv.logs import get_logger
from orch_serv.transport.base import Delivery, DeliveryHandler

log = get_logger("transport")

#: Set, instead of the real properties, on a message whose properties could not be decoded
#: (:mod:`orch_serv.transport.tolerant`): such a message is dead-lettered before any handler.
HEADER_UNDECODABLE = "x-orch-serv-undecodable"

#: Copies a delivery to the dead-letter queue with a reason, then settles it.
Poison = Callable[[Any, str], Awaitable[None]]


def internal_reason(exc: BaseException) -> str:
    """The dead-letter reason for a handler that raised ``exc``."""
    try:
        text = str(exc)
    except Exception:  # a __str__ that raises must not stop the dead letter
        text = "<unprintable>"
    return f"internal error: {type(exc).__name__}: {text}"[:1024]


async def run_guarded(handler: DeliveryHandler, delivery: Delivery, poison: Poison) -> None:
    """Run ``handler``; if it raises without settling ``delivery``, dead-letter it."""
    try:
        await handler(delivery)
    except Exception as exc:  # the guard exists for whatever a handler raises
        if delivery.settled:
            log.error("delivery_handler_failed_after_settling", exc_info=True)
            return
        log.error("delivery_handler_failed", exc_info=True)
        await settle_poison(delivery, internal_reason(exc), poison)


async def settle_poison(delivery: Delivery, reason: str, poison: Poison) -> None:
    """Dead-letter ``delivery`` with ``reason``; failing that, reject it (no requeue)."""
    try:
        await poison(delivery, reason)
        return
    except Exception:  # fall back to the broker's own dead-lettering
        log.error("dead_letter_failed", reason=reason, exc_info=True)
    if delivery.settled:
        return
    try:
        await delivery.reject()
    except Exception:  # the channel is gone: the broker redelivers it
        log.error("delivery_not_settled", reason=reason, exc_info=True)


async def settle_notice(delivery: Delivery, handler: DeliveryHandler) -> None:
    """A control notice (transient): whatever its handler does, it ends up acked."""

    async def drop(target: Any, reason: str) -> None:
        log.warning("control_notice_dropped", reason=reason)
        await target.ack()

    await run_guarded(handler, delivery, drop)
    if not delivery.settled:
        await settle_poison(delivery, "control notice left unsettled", drop)
