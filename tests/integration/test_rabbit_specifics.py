"""What only the real RabbitMQ transport does: fail fast on the first connect."""

from __future__ import annotations

import pytest

from orch_serv.exceptions import TransportError
from orch_serv.transport.rabbit import RabbitTransport

pytestmark = pytest.mark.integration


async def test_connect_fails_fast_with_a_clear_error() -> None:
    with pytest.raises(TransportError, match="cannot connect to RabbitMQ"):
        await RabbitTransport.connect("amqp://guest:guest@127.0.0.1:1/", timeout=2)
