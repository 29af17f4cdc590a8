"""``python -m tests.integration.connect_attempts PORT COUNT``: connect ``RabbitTransport`` to
``127.0.0.1:PORT`` COUNT times on uvloop (the CLI's loop) and print, as JSON, how many
attempts raised what. A process of its own, so that aiormq's leftovers of the failed
attempts (unclosed sockets, close coroutines never awaited) stay out of the test process."""

from __future__ import annotations

import collections
import json
import sys
import warnings

import uvloop

from orch_serv.transport.rabbit import RabbitTransport


async def attempts(port: int, count: int) -> dict[str, int]:
    """What ``count`` connections raise, by exception type."""
    raised: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        try:
            await RabbitTransport.connect(
                f"amqp://guest:guest@127.0.0.1:{port}/", namespace="attempts", timeout=2
            )
        except BaseException as exc:
            raised[type(exc).__name__] += 1
    return dict(raised)


def main() -> None:
    warnings.simplefilter("ignore")  # aiormq's leftovers (see the module's docstring)
    port, count = int(sys.argv[1]), int(sys.argv[2])
    print(json.dumps(uvloop.run(attempts(port, count))))


if __name__ == "__main__":
    main()
