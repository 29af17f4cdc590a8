"""A Redis primary, its replica and one Sentinel on free loopback ports, for the Sentinel tests
(separate ``redis-server`` processes from the installed package; the default Redis on 6379 is
never touched). Stopped, and their directory removed, on exit."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.api.server import free_port
from tests.integration.cli_support import poll

SERVICE = "osk"


@dataclass
class SentinelGroup:
    """The processes of one Sentinel-managed primary."""

    directory: Path
    primary_port: int
    replica_port: int
    sentinel_port: int
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the group."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def start_redis(self, port: int, *extra: str) -> None:
        self.processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--dbfilename",
                f"dump-{port}.rdb",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start_sentinel(self) -> None:
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 500\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
        )
        self.processes[self.sentinel_port] = subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def primary(self) -> int | None:
        """The port of the primary the Sentinel names now (None if it does not answer)."""
        try:
            with redis.Redis(port=self.sentinel_port, socket_timeout=1) as client:
                address = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
        except redis.RedisError:
            return None
        return int(address[1]) if address else None

    def kill(self, port: int) -> None:
        """SIGKILL one process."""
        process = self.processes[port]
        process.kill()
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def _replica_linked(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1) as client:
            info = client.info("replication")
    except redis.RedisError:
        return False
    return bool(info.get("master_link_status") == "up")


def _replica_known(group: SentinelGroup) -> bool:
    try:
        with redis.Redis(port=group.sentinel_port, socket_timeout=1) as client:
            replicas = client.execute_command("SENTINEL REPLICAS", SERVICE)
    except redis.RedisError:
        return False
    return bool(replicas)


@contextmanager
def sentinel_group() -> Iterator[SentinelGroup]:
    """A primary, a replica of it and a Sentinel watching them, ready."""
    with tempfile.TemporaryDirectory(prefix="orch-serv-sentinel-") as directory:
        group = SentinelGroup(Path(directory), free_port(), free_port(), free_port())
        try:
            group.start_redis(group.primary_port)
            group.start_redis(
                group.replica_port, "--replicaof", "127.0.0.1", str(group.primary_port)
            )
            poll("replica linked", lambda: _replica_linked(group.replica_port))
            group.start_sentinel()
            poll("sentinel naming the primary", lambda: group.primary() == group.primary_port)
            poll("sentinel knowing the replica", lambda: _replica_known(group))
            yield group
        finally:
            group.stop()
