"""The message of the 0.2 examples: an order, with a header that routes it.

As in orch_serv 0.2, the hooks the orchestrator and the services call are implemented by the
message class itself.
"""

from __future__ import annotations

from pydantic import BaseModel

from orch_serv.msg import BaseOrchServMsg


class Order(BaseModel):
    """The body: what is ordered, and what the blocks did to it."""

    order_id: str
    item: str
    quantity: int
    unit_price: str = "0"
    total_cents: int = 0
    trail: list[str] = []


class Header(BaseModel):
    """Routing: the flow or the target block, the service command, the last block."""

    flow: str | None = None
    target: str | None = None
    command: str | None = None
    source: str | None = None


class OrderMessage(BaseOrchServMsg[Order, Header]):
    """``body`` (an :class:`Order`) and ``header`` (a :class:`Header`, required here)."""

    body: Order
    header: Header

    def get_source(self) -> str | None:
        """The last block that processed the order."""
        return self.header.source

    def set_source(self, source: str) -> None:
        """Record the block that processes the order."""
        self.header.source = source

    def get_flow(self) -> str | None:
        """The flow the order runs in."""
        return self.header.flow

    def get_target(self) -> str | None:
        """A single block to run instead of a flow."""
        return self.header.target

    def get_command(self) -> str | None:
        """The service command (billing service)."""
        return self.header.command
