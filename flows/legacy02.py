"""An orch_serv 0.2 orchestrator, unchanged, that also runs distributed.

In process (0.2)::

    message = OrderMessage(body=Order(...), header=Header(flow="order"))
    while message.get_source() != "notify customer":
        await orchestrator.handle(message)   # one block per call, chosen by the source

Distributed, with only the commands added::

    orch-serv orchestrator flows.legacy02:orchestrator
    orch-serv service flows.legacy02:orchestrator      # runs the blocks' `process`

and a client starts runs with ``Bridge(orchestrator).start(client, message)``.
``billing`` is a distributed orchestrator whose flow calls the 0.2 billing service
(``orch-serv service services_examples.legacy02.service:service``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator
from orch_serv.orchestrator import (
    AsyncBlock,
    AsyncFlow,
    AsyncOrchestrator,
    SyncBlock,
    SyncFlow,
    SyncOrchestrator,
)
from services_examples.legacy02.messages import OrderMessage
from services_examples.legacy02.service import service as billing_service
from services_examples.legacy02.stepper import PriceStepper

#: Simulated latency of the stock system, in seconds (0: none).
WORK_SECONDS = float(os.environ.get("LEGACY02_WORK_SECONDS", "0"))
#: What the audit hook saw (in the orchestrator's process).
AUDIT: list[str] = []


class ReserveStock(AsyncBlock):
    """Reserve the items."""

    name_block = "reserve stock"

    async def process(self, message: OrderMessage) -> OrderMessage:
        """Reserve (after the simulated latency of the stock system)."""
        if WORK_SECONDS:
            await asyncio.sleep(WORK_SECONDS)
        message.body.trail.append("reserved")
        return message


class PriceOrder(AsyncBlock):
    """Price the order with the stepper."""

    name_block = "price order"

    async def process(self, message: OrderMessage) -> OrderMessage:
        """Compute the total in cents."""
        line = f"{message.body.quantity} x {message.body.unit_price}"
        message.body.total_cents = PriceStepper().step_by_step(line)
        message.body.trail.append("priced")
        return message


class NotifyCustomer(AsyncBlock):
    """Tell the customer; returns nothing (the audit hook then sees the input)."""

    name_block = "notify customer"

    async def process(self, message: OrderMessage) -> None:
        """Notify (and forward nothing new)."""
        message.body.trail.append("notified")


class OrderFlow(AsyncFlow):
    """reserve stock -> price order -> notify customer."""

    name_flow = "order"
    steps_flow = FlowBuilder(
        FlowBlock(ReserveStock, pre_handler_function="check_quantity"),
        FlowBlock(PriceOrder),
        FlowBlock(NotifyCustomer, post_handler_function="audit"),
    )

    def check_quantity(self, message: OrderMessage) -> OrderMessage | None:
        """Orders of nothing stop here, silently."""
        return message if message.body.quantity > 0 else None

    def audit(self, message: OrderMessage) -> None:
        """Record the order once the customer was notified."""
        AUDIT.append(message.body.order_id)


orchestrator = AsyncOrchestrator(flows=[OrderFlow], blocks=[PriceOrder], default_flow="order")


# -- the same in the synchronous style ---------------------------------------------------------
class CheckAddress(SyncBlock):
    """Check the delivery address."""

    name_block = "check address"

    def process(self, message: OrderMessage) -> OrderMessage:
        """Mark the address checked."""
        message.body.trail.append("address checked")
        return message


class Ship(SyncBlock):
    """Ship the order."""

    name_block = "ship"

    def process(self, message: OrderMessage) -> OrderMessage:
        """Mark the order shipped."""
        message.body.trail.append("shipped")
        return message


class ShippingFlow(SyncFlow):
    """check address -> ship."""

    name_flow = "shipping"
    steps_flow = FlowBuilder(FlowBlock(CheckAddress), FlowBlock(Ship))


sync_orchestrator = SyncOrchestrator(flows=[ShippingFlow])


# -- a distributed flow calling the 0.2 billing service ----------------------------------------
class Billing(Flow):
    """charge -> refund, on the 0.2 service ``BillingService``."""

    name_flow = "billing"
    steps_flow = FlowBuilder(
        FlowBlock(Block("charge", service=billing_service.name)),
        FlowBlock(Block("refund", service=billing_service.name)),
    )


billing = Orchestrator(flows=[Billing], services=[billing_service])


def describe() -> dict[str, Any]:
    """What this module defines (for the docs and a quick look)."""
    return {
        "order": OrderFlow().get_steps(),
        "shipping": ShippingFlow().get_steps(),
        "billing": billing.get_list_flows(),
    }
