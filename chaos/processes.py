"""The orchestrator and service processes under chaos, started with the project's CLI
(``orch-serv orchestrator chaos.app:orchestrator``, ``orch-serv service chaos.app:service``),
SIGKILLed and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "orch-serv")
COMMANDS = {
    "orchestrator": [CLI, "orchestrator", "chaos.app:orchestrator"],
    "service": [CLI, "service", "chaos.app:service"],
}


@dataclass
class Member:
    """One process slot of the fleet (its process changes at every restart)."""

    role: str
    index: int
    process: asyncio.subprocess.Process
    starts: int = 1

    @property
    def name(self) -> str:
        """``orchestrator-1``, ``service-2``, ..."""
        return f"{self.role}-{self.index}"


class Fleet:
    """``orchestrators`` orchestrator and ``services`` service processes with ``env``;
    each one's stderr goes to ``log_dir/NAME.log`` (appended across restarts)."""

    def __init__(self, env: dict[str, str], orchestrators: int, services: int, log_dir: Path):
        if orchestrators < 1 or services < 1:
            raise ValueError("the fleet needs at least one orchestrator and one service process")
        self.env = env
        self.log_dir = log_dir
        self.slots = [("orchestrator", i) for i in range(1, orchestrators + 1)] + [
            ("service", i) for i in range(1, services + 1)
        ]
        self.members: list[Member] = []
        #: SIGKILLs sent, and processes that ended without being killed.
        self.kills = 0
        self.unexpected_exits: list[str] = []

    async def start(self) -> None:
        """Start every process."""
        for role, index in self.slots:
            self.members.append(Member(role, index, await self._spawn(role, index)))

    async def _spawn(self, role: str, index: int) -> asyncio.subprocess.Process:
        with (self.log_dir / f"{role}-{index}.log").open("ab") as log:
            return await asyncio.create_subprocess_exec(
                *COMMANDS[role],
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches the driver only; it kills them
            )

    async def kill_random(self, rng: random.Random) -> str:
        """SIGKILL one process picked at random, start its replacement; its name."""
        member = rng.choice(self.members)
        with contextlib.suppress(ProcessLookupError):
            member.process.send_signal(signal.SIGKILL)
        await member.process.wait()
        self.kills += 1
        member.process = await self._spawn(member.role, member.index)
        member.starts += 1
        return member.name

    async def revive(self) -> list[str]:
        """Restart the processes that ended on their own (a crash: counted); for each,
        ``NAME (exit CODE)``."""
        revived = []
        for member in self.members:
            if member.process.returncode is not None:
                exit_ = f"{member.name} (exit {member.process.returncode})"
                self.unexpected_exits.append(exit_)
                member.process = await self._spawn(member.role, member.index)
                member.starts += 1
                revived.append(exit_)
        return revived

    async def stop(self) -> None:
        """SIGKILL every process (idempotent)."""
        for member in self.members:
            if member.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    member.process.send_signal(signal.SIGKILL)
        for member in self.members:
            await member.process.wait()
