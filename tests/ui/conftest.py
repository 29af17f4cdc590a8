"""Fixtures of the dashboard tests: a real ``orch-serv api`` subprocess with an in-process
orchestrator (and the ``work`` service) on its namespace, headless Chromium driven by
Playwright (Debian's ``/usr/bin/chromium``: no browser is downloaded), and helpers to log in,
publish dead letters and keep screenshots in ``tests/ui/artifacts/``."""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import httpx
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, async_playwright

from orch_serv.api.tokens import Scope, TokenStore
from orch_serv.constants import HEADER_DEAD_ID, HEADER_ORIGIN_QUEUE, HEADER_REASON
from orch_serv.orchestrator.app import Running
from tests.api.server import ApiServer, api_server
from tests.conftest import AMQP_URL, REDIS_URL
from tests.ui.app import orchestrator

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
ARTIFACTS = Path(__file__).parent / "artifacts"


@dataclass
class Ui:
    """The server, the orchestrator running its flows, and a scratch directory."""

    server: ApiServer
    running: Running
    tmp: Path
    #: A token with the scopes an operator's browser needs: read and operate.
    operator: str = ""

    def token(self, scope: Scope | None) -> str:
        """The token of one scope, or (None) the operator's read + operate token."""
        return self.operator if scope is None else self.server.tokens[scope]

    def url(self, path: str) -> str:
        """The absolute URL of a dashboard path (``/runs`` -> ``http://.../ui/runs``)."""
        return f"{self.server.url}/ui{path}"


async def operator_token(server: ApiServer) -> str:
    """A token with the read and operate scopes, written straight to Redis."""
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        store = TokenStore(client, server.settings.key_prefix)
        return (await store.create("test-operator", {Scope.read, Scope.operate}))[0]
    finally:
        await client.aclose()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def ui() -> AsyncIterator[Ui]:
    """``orch-serv api`` (auth on) and the test app's orchestrator with its service."""
    async with api_server(stem="ui") as server:
        settings = server.settings.model_copy(
            update={"shutdown_grace_seconds": 2, "log_level": "WARNING"}
        )
        async with orchestrator.run(settings, with_services=True) as running:
            with tempfile.TemporaryDirectory(prefix="orch_serv_ui_") as tmp:
                yield Ui(server, running, Path(tmp), await operator_token(server))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's package)."""
    if not HAVE_CHROMIUM:
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            await chromium.close()


async def log_in(browser: Browser, ui: Ui, scope: Scope | None = Scope.admin) -> Page:
    """A new browser context logged in with a token of ``scope`` (None: the operator's
    read + operate token), on the runs page."""
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    await page.goto(ui.url("/login"))
    await page.fill("#token", ui.token(scope))
    await page.click("button[type=submit]")
    await page.wait_for_url(re.compile(r".*/ui/runs$"))
    return page


async def screenshot(page: Page, name: str) -> None:
    """Keep a full-page screenshot as a test artifact."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@asynccontextmanager
async def http_session(
    ui: Ui, scope: Scope | None = Scope.admin
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An HTTP client logged in as a browser would be (cookies), and its CSRF token."""
    async with httpx.AsyncClient(base_url=ui.server.url, timeout=30) as client:
        form = await client.get("/ui/login")
        answer = await client.post(
            "/ui/login", data={"csrf": csrf_of(form.text), "token": ui.token(scope)}
        )
        assert answer.status_code == 303, answer.text
        runs = await client.get("/ui/runs")
        yield client, csrf_of(runs.text)


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


async def publish_dead_letter(namespace: str, letter_id: str, origin_queue: str) -> None:
    """Put a message in the namespace's dead-letter queue as if it came from
    ``origin_queue`` (which is declared, so that a replay has somewhere to go)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(origin_queue, durable=True)
        message = aio_pika.Message(
            b'{"not": "an envelope"}',
            message_id=letter_id,
            headers={
                HEADER_REASON: "undecodable: test letter",
                HEADER_ORIGIN_QUEUE: origin_queue,
                HEADER_DEAD_ID: letter_id,
            },
        )
        await channel.default_exchange.publish(message, f"{namespace}.dead", mandatory=True)
