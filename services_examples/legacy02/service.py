"""A 0.2 service, unchanged: billing, with two commands, a post-processor and the swap scope.

In process: ``await service.handle(message)``. Distributed: ``orch-serv service
services_examples.legacy02.service:service`` hosts it as the service ``BillingService`` (its
class name); a flow step ``Block("charge", service="BillingService")`` sends it commands, and
the handlers receive the :class:`OrderMessage` as in 0.2.
"""

from __future__ import annotations

from typing import Any

from orch_serv.service import (
    AsyncCommandHandlerPostProcessStrategy,
    AsyncCommandHandlerProcessStrategy,
    AsyncService,
    ServiceBlock,
    ServiceBuilder,
)
from services_examples.legacy02.messages import OrderMessage
from services_examples.legacy02.stepper import PriceStepper

#: Receipts written by the post-processor (a real service would e-mail them).
RECEIPTS: list[dict[str, Any]] = []


class Charge(AsyncCommandHandlerProcessStrategy):
    """``charge``: price the order and charge it; the receipt data goes to the post-processor."""

    target_command = "charge"

    async def process(self, msg: OrderMessage) -> tuple[OrderMessage, dict[str, Any]]:
        """Charge the order's total (computed by the stepper)."""
        line = f"{msg.body.quantity} x {msg.body.unit_price}"
        msg.body.total_cents = PriceStepper().step_by_step(line)
        msg.body.trail.append("charged")
        self.set_to_swap_scope(f"charged:{msg.body.order_id}", msg.body.total_cents)
        return msg, {"order_id": msg.body.order_id, "cents": msg.body.total_cents}


class Refund(AsyncCommandHandlerProcessStrategy):
    """``refund``: refund what ``charge`` recorded for the order in the swap scope."""

    target_command = "refund"

    async def process(self, msg: OrderMessage) -> OrderMessage:
        """Refund the order (0 when this service instance never charged it)."""
        charged = self.get_from_swap_scope(f"charged:{msg.body.order_id}") or 0
        self.del_from_swap_scope(f"charged:{msg.body.order_id}")
        msg.body.total_cents -= charged
        msg.body.trail.append("refunded")
        return msg


class Receipt(AsyncCommandHandlerPostProcessStrategy):
    """After ``charge``: record the receipt."""

    async def post_process(self, msg: Any, additional_data: Any = None) -> None:
        """``msg`` is the charged OrderMessage, ``additional_data`` the receipt data."""
        RECEIPTS.append({**(additional_data or {}), "trail": list(msg.body.trail)})


class BillingService(AsyncService):
    """The billing service."""

    service_commands = ServiceBuilder(ServiceBlock(Charge, Receipt), ServiceBlock(Refund))


service = BillingService()
