"""What the Node.js service tests share: the Python side of the mixed flows, the Node service
subprocess, the npm install check, and raw AMQP helpers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import aio_pika

from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator, Service
from orch_serv.constants import EventKind
from orch_serv.flow.policy import Timeouts
from orch_serv.settings import Settings
from orch_serv.store.base import Event
from tests.conftest import AMQP_URL

NODE_DIR = Path(__file__).resolve().parents[2] / "services_examples" / "node"
WAIT = 30.0
FAR = 60.0  # a clock limit the tests never come near
NODE_SERVICE = "textops"

# -- the Python side of the flows --------------------------------------------------------------
prep = Service("prep")


@prep.command("trim")
async def trim(body: dict[str, Any]) -> dict[str, Any]:
    """Before the Node step: trims the text (the rest of the body goes through)."""
    return {**body, "text": str(body["text"]).strip()}


@prep.command("count")
async def count(body: dict[str, Any]) -> dict[str, Any]:
    """After the Node step: counts the words of what Node upper-cased."""
    return {"text": body["text"], "words": len(body["text"].split()), "node_sha256": body["sha256"]}


def _block(name: str, service: str, command: str) -> type[Block]:
    return type(name, (Block,), {"name_block": name, "service": service, "command": command})


Trim = _block("trim", "prep", "trim")
Count = _block("count", "prep", "count")
Upper = _block("upper", NODE_SERVICE, "uppercase")
Refuse = _block("refuse", NODE_SERVICE, "refuse")
Nope = _block("nope", NODE_SERVICE, "nope")


class Mixed(Flow):
    """Python -> Node (with step clocks, so the command asks for a start notice) -> Python."""

    name_flow = "mixed"
    steps_flow = FlowBuilder(
        FlowBlock(Trim),
        FlowBlock(Upper, timeouts=Timeouts(dispatch=FAR, heartbeat=FAR, execution=FAR)),
        FlowBlock(Count),
    )


class Refused(Flow):
    """Python -> a Node command that fails for good."""

    name_flow = "refused"
    steps_flow = FlowBuilder(FlowBlock(Trim), FlowBlock(Refuse))


app = Orchestrator(flows=[Mixed, Refused], blocks=[Upper, Nope], services=[prep])


# -- npm packages ------------------------------------------------------------------------------
def installed_matches_lock() -> bool:
    """True when node_modules holds exactly the packages package-lock.json pins (npm's own
    record of what it installed, node_modules/.package-lock.json, says so)."""
    hidden = NODE_DIR / "node_modules" / ".package-lock.json"
    if not hidden.is_file():
        return False

    def pinned(path: Path) -> dict[str, tuple[Any, Any]]:
        packages = json.loads(path.read_text(encoding="utf-8")).get("packages", {})
        return {
            name: (entry.get("version"), entry.get("integrity"))
            for name, entry in packages.items()
            if name.startswith("node_modules/")
        }

    try:
        return pinned(NODE_DIR / "package-lock.json") == pinned(hidden)
    except (OSError, ValueError):
        return False


# -- the Node service process ----------------------------------------------------------------
class NodeService:
    """The Node service subprocess: its process and the file its log (stderr) goes to."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    def log_text(self) -> str:
        """What the service logged so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def exit_code(self) -> int:
        """Waits for the process to end on its own; its exit code."""
        async with asyncio.timeout(WAIT):
            return await self.process.wait()

    async def terminate(self) -> int:
        """SIGTERM (unless it has ended), then the exit code (it drains and exits)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.exit_code()


async def delete_service_queues(settings: Settings) -> None:
    """Delete the queues of the two services (conftest removes the rest of the namespace)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for service in (NODE_SERVICE, "prep"):
            await channel.queue_delete(f"{settings.namespace}.svc.{service}")


# -- helpers -----------------------------------------------------------------------------------
def of_kind(events: list[Event], kind: EventKind) -> list[Event]:
    """The events of one kind, in history order."""
    return [e for e in events if e.kind is kind]


async def publish_raw(
    settings: Settings, body: bytes, message_id: str, headers: dict[str, Any]
) -> None:
    """One AMQP message to the Node service's queue, exactly as given (not batched)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.namespace)
        message = aio_pika.Message(body, message_id=message_id, headers=headers)
        await exchange.publish(message, f"svc.{NODE_SERVICE}", mandatory=True)


async def drain_dead_letters(settings: Settings) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message off the namespace's dead-letter queue (raw, with its properties)."""
    connection = await aio_pika.connect(AMQP_URL)
    found = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{settings.namespace}.dead", ensure=True)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
    return found


def envelope(kind: str, message_id: str, **fields: Any) -> dict[str, Any]:
    """A minimal envelope (as JSON data) of a made-up run."""
    return {"kind": kind, "message_id": message_id, "run_id": "r" * 22, **fields}


async def run_to_exit(node_executable: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the Node service with ``env`` until it exits on its own: exit code and log."""
    process = await asyncio.create_subprocess_exec(
        node_executable,
        "src/main.js",
        cwd=NODE_DIR,
        env={**os.environ, "ORCH_SERV_AMQP_URL": AMQP_URL, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WAIT):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stderr.decode()
