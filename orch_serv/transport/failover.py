"""A robust RabbitMQ connection over several nodes (a RabbitMQ cluster, or any list of brokers
sharing the same queues).

``ORCH_SERV_AMQP_URL`` may list several URLs separated by commas
(``amqp://u:p@rabbit-1:5672/,amqp://u:p@rabbit-2:5672/``). The first connection goes to the
first node that answers, in the order given. When an established connection is lost,
aio-pika's robust connection reconnects, and every new attempt goes to the **next** node of
the list (round robin), so a dead node is left for the others instead of being retried
alone; channels, consumers, publisher confirms and acks are restored on the new node exactly
as after a reconnection to the same one (a message whose ack was lost with the old
connection is redelivered, which every consumer already tolerates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from yarl import URL

from orch_serv.logs import get_logger

log = get_logger("transport")


class FailoverConnection(aio_pika.RobustConnection):
    """A robust connection whose every connection attempt after the first goes to the next
    URL of its list.

    aio-pika starts each attempt of its reconnection loop by clearing ``transport``; that is
    where the next URL is taken (``tests/integration/test_rabbit_failover.py`` guards this
    against a change of aio-pika's internals)."""

    def __init__(self, urls: Sequence[URL], **kwargs: Any) -> None:
        if not urls:
            raise ValueError("give at least one URL")
        self._urls = list(urls)
        self._next = 0
        self._attempts = 0
        self._transport: Any = None
        super().__init__(self._urls[0], **kwargs)

    @property
    def transport(self) -> Any:
        """The underlying connection (None between attempts)."""
        return self._transport

    @transport.setter
    def transport(self, value: Any) -> None:
        if value is None and self._attempts_started():
            self._next = (self._next + 1) % len(self._urls)
            self.url = self._urls[self._next]
            if len(self._urls) > 1:
                log.info("amqp_failover", node=self._next, of=len(self._urls))
        self._transport = value

    def _attempts_started(self) -> bool:
        """Whether an attempt was made since the connection was built: the constructor and
        the first attempt of the reconnection loop both clear ``transport`` first."""
        self._attempts += 1
        return self._attempts > 2

    @property
    def node(self) -> int:
        """The index of the URL the current (or next) attempt uses."""
        return self._next


async def connect_failover(
    urls: Sequence[URL], *, timeout: float, errors: tuple[type[BaseException], ...]
) -> AbstractRobustConnection:
    """A connection to the first of ``urls`` that answers (each tried once, in order), which
    then fails over along the list (starting after that node); the last error when none
    answers."""
    last: BaseException | None = None
    for start in range(len(urls)):
        ordered = [*urls[start:], *urls[:start]]
        connection = FailoverConnection(ordered)
        try:
            await connection.connect(timeout=timeout)
        except (TimeoutError, *errors) as exc:  # type: ignore[misc]
            last = exc
            await connection.close()
            continue
        return connection
    assert last is not None
    raise last


__all__ = ["FailoverConnection", "connect_failover"]
