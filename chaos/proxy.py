"""A small TCP proxy between the processes under chaos and RabbitMQ, which can cut every
connection going through it at once.

It runs as a process of its own (``python -m chaos.proxy --target HOST:PORT``), so that the
driver's work never slows the traffic: it prints ``listening PORT`` when it accepts
connections, and on SIGUSR1 aborts every proxied connection (both sides, as a network
failure would) and prints ``cut N``, N being the number of connections it cut.
:class:`ProxyProcess` starts and drives it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 64 * 1024


class Proxy:
    """Forwards every connection to ``host:port`` and remembers it until it closes."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._links: dict[asyncio.StreamWriter, asyncio.StreamWriter] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection: open the upstream one and pipe both ways."""
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self._links[writer] = up_writer
        try:
            await asyncio.gather(
                _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
            )
        finally:
            self._links.pop(writer, None)
            writer.transport.abort()
            up_writer.transport.abort()

    def cut(self) -> int:
        """Abort every open connection (client and upstream sides); how many there were."""
        links = list(self._links.items())
        self._links.clear()
        for client, upstream in links:
            client.transport.abort()
            upstream.transport.abort()
        return len(links)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()  # one side gone: the whole link goes


async def serve(target: str, listen_port: int) -> None:
    """Proxy ``127.0.0.1:listen_port`` to ``target`` until SIGTERM or SIGINT."""
    host, _, port = target.rpartition(":")
    proxy = Proxy(host or "127.0.0.1", int(port))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", listen_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(f"cut {proxy.cut()}", flush=True))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    async with server:
        await stop.wait()
    proxy.cut()


class ProxyProcess:
    """The proxy as a child process: :meth:`start`, :meth:`cut`, :meth:`stop`."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        #: Cuts done, and connections aborted by them.
        self.cuts = 0
        self.connections_cut = 0

    @classmethod
    async def start(cls, target_host: str, target_port: int) -> ProxyProcess:
        """Start a proxy to ``target_host:target_port`` on a free loopback port."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chaos.proxy",
            "--target",
            f"{target_host}:{target_port}",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches the driver only; it stops the proxy
        )
        try:
            line = await asyncio.wait_for(_readline(process), 30)
        except BaseException:
            process.kill()
            await process.wait()
            raise
        word, _, port = line.partition(" ")
        if word != "listening":
            process.kill()
            await process.wait()
            raise RuntimeError(f"the chaos proxy did not start: {line!r}")
        return cls(process, int(port))

    async def cut(self) -> int:
        """Cut every connection going through the proxy; how many were cut."""
        self.process.send_signal(signal.SIGUSR1)
        line = await asyncio.wait_for(_readline(self.process), 10)
        count = int(line.removeprefix("cut "))
        self.cuts += 1
        self.connections_cut += count
        return count

    async def stop(self) -> None:
        """Kill the proxy (idempotent)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()


async def _readline(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError("the chaos proxy exited")
    return line.decode().strip()


def main(argv: list[str] | None = None) -> None:
    """``python -m chaos.proxy --target HOST:PORT [--port N]``."""
    parser = argparse.ArgumentParser(prog="python -m chaos.proxy", description=__doc__)
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--port", type=int, default=0, help="loopback port (0: a free one)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.target, args.port))


if __name__ == "__main__":
    main()
