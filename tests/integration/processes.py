"""``orch-serv`` processes started with a test's settings (the real CLI), each logging to its
own file; none outlives the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from orch_serv.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "orch-serv")


class Processes:
    """Starts CLI processes with the test's namespace, key prefix and ``env``."""

    def __init__(self, settings: Settings, log_dir: Path, env: Mapping[str, str] = {}) -> None:
        self.env = {
            **os.environ,
            "ORCH_SERV_NAMESPACE": settings.namespace,
            "ORCH_SERV_KEY_PREFIX": settings.key_prefix,
            "ORCH_SERV_LOG_LEVEL": "WARNING",
            "ORCH_SERV_SHUTDOWN_GRACE_SECONDS": "5",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, role: str, app: str, env: Mapping[str, str] = {}) -> subprocess.Popen[bytes]:
        """``orch-serv ROLE APP`` with ``env`` on top of the test's."""
        # the child writes to its own copy of the descriptor: ours closes once it has it
        with open(self.log_dir / f"{role}-{len(self.started)}.log", "wb") as log:
            proc = subprocess.Popen(
                [CLI, role, app], cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=log
            )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM to every process still running; SIGKILL after 30 s."""
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
