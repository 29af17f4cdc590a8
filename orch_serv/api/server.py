"""Serving the API with uvicorn inside an existing event loop (``orch-serv api`` and
``orch-serv dev``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn
from fastapi import FastAPI


def config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """uvicorn settings for ``app``: our own logging (structlog), no access log by default."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
    )


class _Embedded(uvicorn.Server):
    """A server that leaves signals to its host process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully and return (the process then
    exits normally: uvicorn's own handling would raise the signal again once it stopped)."""
    server = _Embedded(config(app, host, port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stopper(server))
    await server.serve()


def _stopper(server: uvicorn.Server) -> Callable[[], None]:
    def stop() -> None:
        server.should_exit = True

    return stop


@contextlib.asynccontextmanager
async def serving(app: FastAPI, host: str, port: int) -> AsyncIterator[uvicorn.Server]:
    """Serve in the background while the block runs (signal handling is left to the caller);
    the server has bound its socket when the block starts."""
    server = _Embedded(config(app, host, port))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the API server stopped before it started")
            await asyncio.sleep(0.01)
        yield server
    finally:
        server.should_exit = True
        await task


def bound_url(server: uvicorn.Server) -> str:
    """``http://host:port`` the server listens on (the real port when 0 was asked)."""
    for srv in server.servers:
        for sock in srv.sockets:
            host, port = sock.getsockname()[:2]
            return f"http://{host}:{port}"
    raise RuntimeError("the server has no socket")


__all__ = ["bound_url", "config", "serve", "serving"]
