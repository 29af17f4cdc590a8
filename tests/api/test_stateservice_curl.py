"""The StateService README's curl session, unchanged but for the address, against a real
server in a subprocess (``tests/charts/stateservice_app.py``: ``orch-serv api`` with the
surface mounted at ``/stateservice`` and ``/state``). The old server had no authentication,
so the literal session runs on a server started without it; the same session with tokens
runs on one with authentication on."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer
from tests.charts.stateservice_app import stateservice_server
from tests.charts.test_loader import SEED

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

#: The README's session: (command, what grep looks for) - `| grep 200` / `| grep 406`.
SESSION = [
    ("curl -sIX GET http://localhost:5000/state?state=green_state", "200"),
    ("curl -sIX PUT http://localhost:5000/state?state=green_state", None),
    ("curl -sIX GET http://localhost:5000/state?state=red_state", "200"),
    ("curl -sIX GET http://localhost:5000/state?state=green_state", "406"),
    ("curl -sIX PUT http://localhost:5000/state?state=red_state", None),
    ("curl -sIX GET http://localhost:5000/state?state=blue_state", "200"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def open_server() -> AsyncIterator[ApiServer]:
    """The surface without authentication (as StateService was)."""
    async with stateservice_server(insecure=True) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server() -> AsyncIterator[ApiServer]:
    """The surface with authentication on."""
    async with stateservice_server() as server:
        yield server


async def shell(command: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def load(server: ApiServer, name: str, text: str, *, default: bool = False) -> None:
    async with server.client(Scope.admin) as client:
        response = await client.put(
            f"/stateservice/charts/{name}", content=text, params={"default": default}
        )
    assert response.status_code == 201, response.text


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_the_readme_session_with_curl(open_server: ApiServer) -> None:
    await load(open_server, "states", SEED, default=True)
    for command, expected in SESSION:
        command = command.replace("http://localhost:5000", open_server.url)
        if expected is None:
            code, out = await shell(command)
            assert code == 0 and out.startswith("HTTP/1.1 200 OK"), (command, out)
        else:
            code, out = await shell(f"{command} | grep {expected}")
            assert code == 0, (command, out)
            assert out.startswith(f"HTTP/1.1 {expected}"), (command, out)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_the_readme_session_on_a_named_chart_and_machine(open_server: ApiServer) -> None:
    await load(open_server, "fleet", SEED)
    base = f"{open_server.url}/stateservice/charts/fleet/machines/default"
    for command, expected in SESSION:
        command = command.replace("http://localhost:5000", base)
        code, out = await shell(command)
        assert code == 0 and out.startswith(f"HTTP/1.1 {expected or 200}"), (command, out)


async def test_the_session_with_tokens(server: ApiServer) -> None:
    await load(server, "states", SEED, default=True)
    async with server.client(None) as client:
        steps = [
            ("GET", "green_state", 200),
            ("PUT", "green_state", 200),
            ("GET", "red_state", 200),
            ("GET", "green_state", 406),
            ("PUT", "green_state", 406),  # StateService answered 500 here
            ("PUT", "red_state", 200),
            ("GET", "blue_state", 200),
            ("PUT", "blue_state", 409),
        ]
        for method, state, status in steps:
            for path in ("/state", "/stateservice/state"):
                if method == "PUT" and path == "/stateservice/state" and status == 200:
                    continue  # each PUT counts: once per step
                scope = Scope.read if method == "GET" else Scope.operate
                response = await client.request(
                    method, path, params={"state": state}, headers=server.headers(scope)
                )
                assert response.status_code == status, (method, path, state, response.text)
                if status == 200:
                    assert response.text == state
                    assert response.headers["content-type"].startswith("text/plain")
        head = await client.head(
            "/state", params={"state": "blue_state"}, headers=server.headers(Scope.read)
        )
        assert head.status_code == 200 and head.text == ""
