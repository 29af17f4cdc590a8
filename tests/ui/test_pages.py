"""The dashboard's pages over HTTP: every bad input is a 4xx page that says what is wrong
(never a 5xx), the runs page pages 10,000 runs on the server (one page of rows at a time,
with a cursor), and ``--insecure-no-auth`` needs no login but still checks CSRF."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio

from orch_serv.api.tokens import Scope
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.store.base import NewRun
from orch_serv.store.redis import RedisRunStore
from tests.api.server import ApiServer, api_server
from tests.conftest import REDIS_URL
from tests.ui.conftest import Ui, csrf_of, http_session

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

MANY = 10_000
_ROW = re.compile(r'<tr data-run="([^"]+)"')


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/ui/runs?state=bogus", 400, "unknown state &#39;bogus&#39;; known: PENDING"),
        ("/ui/runs?since=yesterday", 400, "&#39;since&#39; must be a time"),
        ("/ui/runs?until=-5", 400, "&#39;until&#39; must be a time"),
        ("/ui/runs?since=2026-12-02&until=2026-12-01", 400, "&#39;since&#39; is after"),
        ("/ui/runs?limit=7", 400, "&#39;limit&#39; must be one of 25, 50, 100, 200"),
        ("/ui/runs?after=%%%", 400, "the page cursor is not valid"),
        ("/ui/runs?after=WzEsMl0", 400, "the page cursor is not valid"),
        ("/ui/runs?flow=" + "x" * 301, 400, "longer than 300 characters"),
        ("/ui/runs?id=no-such-run", 404, "No run has the id &#39;no-such-run&#39;."),
        ("/ui/runs?key=no-such-key", 200, "No run was started with the key"),
        ("/ui/runs/no-such-run", 404, "no run has the id"),
        ("/ui/runs/no-such-run/live", 404, "no run has the id"),
        ("/ui/flows/flow/no-such-flow", 404, "no flow &#39;no-such-flow&#39; is registered"),
        ("/ui/flows/flow/ship?version=nope", 404, "version &#39;nope&#39;"),
        ("/ui/flows/pipeline/ship", 404, "unknown kind"),
        ("/ui/flows/flow/ship?window=3y", 400, "unknown window &#39;3y&#39;"),
        ("/ui/deadletters/no-such-letter", 404, "no dead letter has the id"),
        ("/ui/no-such-page", 404, "Not Found"),
    ],
)
async def test_a_bad_request_is_a_page_saying_why(
    ui: Ui, path: str, status: int, says: str
) -> None:
    async with http_session(ui, Scope.read) as (client, _):
        answer = await client.get(path)
    assert answer.status_code == status, answer.text
    assert says in answer.text
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("path", "form", "status", "says"),
    [
        ("/ui/deadletters/replay", {}, 400, "names no dead letter"),
        ("/ui/deadletters/replay", {"id": "no-such-letter"}, 404, "no dead letter has the id"),
        ("/ui/deadletters/purge", {"all": "1"}, 400, "tick the confirmation box"),
        ("/ui/runs/no-such-run/retry", {}, 404, "no run has the id"),
        ("/ui/runs/no-such-run/cancel", {"reason": "x" * 501}, 400, "longer than 500"),
    ],
)
async def test_a_bad_form_is_a_page_saying_why(
    ui: Ui, path: str, form: dict[str, str], status: int, says: str
) -> None:
    async with http_session(ui, None) as (client, csrf):
        answer = await client.post(path, data={"csrf": csrf, **form})
    assert answer.status_code == status, answer.text
    assert says in answer.text


async def test_a_succeeded_run_cannot_be_retried(ui: Ui) -> None:
    run_id = await ui.running.start("ship", {"n": 9})
    await ui.running.wait(run_id, timeout=30)
    async with http_session(ui, None) as (client, csrf):
        page = await client.get(f"/ui/runs/{run_id}")
        assert "retry-run" not in page.text and "cancel-run" not in page.text
        answer = await client.post(f"/ui/runs/{run_id}/retry", data={"csrf": csrf})
    assert answer.status_code == 409
    assert "only FAILED or TIMED_OUT runs can be retried" in answer.text


async def test_search_by_id_and_by_key_find_the_run(ui: Ui) -> None:
    run_id = await ui.running.start("ship", {"n": 10}, key="order-10")
    async with http_session(ui, Scope.read) as (client, _):
        found = await client.get(f"/ui/runs?id={run_id}")
        assert found.status_code == 303 and found.headers["location"] == f"/ui/runs/{run_id}"
        by_key = await client.get("/ui/runs?key=order-10")
    assert _ROW.findall(by_key.text) == [run_id]


# -- 10,000 runs ----------------------------------------------------------------------------
SPEC = FlowSpec(
    name="bulk",
    steps=(StepSpec(index=0, name="only", block="only", service="nobody", command="x"),),
).with_version()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def crowded() -> AsyncIterator[ApiServer]:
    """A server whose namespace holds 10,000 PENDING runs of the flow ``bulk`` (written
    straight to the store; no orchestrator runs there)."""
    async with api_server(stem="uibulk") as server:
        store = await RedisRunStore.connect(REDIS_URL, prefix=server.settings.key_prefix)
        try:
            await store.register_specs([SPEC], default_flow=None, default_block=None)
            now = time.time()
            for start in range(0, MANY, 1000):
                await asyncio.gather(
                    *(
                        store.create_run(NewRun(f"bulk-{i:05d}", SPEC, {"i": i}, now + i / 1000))
                        for i in range(start, start + 1000)
                    )
                )
        finally:
            await store.close()
        yield server


@asynccontextmanager
async def _logged_in(server: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        form = await client.get("/ui/login")
        token = server.tokens[Scope.read]
        await client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": token})
        yield client


async def test_ten_thousand_runs_are_paged_on_the_server(crowded: ApiServer) -> None:
    async with _logged_in(crowded) as client:
        first = await client.get("/ui/runs")
        assert first.status_code == 200
        rows = _ROW.findall(first.text)
        assert len(rows) == 50  # one page, not 10,000 rows
        assert rows[:2] == ["bulk-09999", "bulk-09998"]  # newest first
        assert '<strong data-count="PENDING">10000</strong>' in first.text
        following = re.search(r'href="(/ui/runs\?after=[^"]+)" rel="next"', first.text)
        assert following is not None
        second = await client.get(following.group(1).replace("&amp;", "&"))
        assert _ROW.findall(second.text)[0] == "bulk-09949"
        assert "data-live-url" not in second.text  # a later page does not move under the reader
        filtered = await client.get("/ui/runs?flow=bulk&state=PENDING&limit=200")
        assert len(_ROW.findall(filtered.text)) == 200
        assert '<strong data-count="PENDING">10000</strong>' in filtered.text
        live = await client.get("/ui/runs/live?flow=bulk")
        assert len(_ROW.findall(live.text)) == 50


# -- without authentication -----------------------------------------------------------------
async def test_insecure_mode_needs_no_login_but_checks_csrf() -> None:
    async with (
        api_server(insecure=True, stem="uiopen") as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        page = await client.get("/ui/runs")
        assert page.status_code == 200 and "insecure-no-auth" in page.text
        assert (await client.get("/ui/login")).status_code == 303  # nothing to log in to
        purge = await client.post("/ui/deadletters/purge", data={"all": "1", "confirm": "yes"})
        assert purge.status_code == 403
        done = await client.post(
            "/ui/deadletters/purge", data={"all": "1", "confirm": "yes", "csrf": csrf_of(page.text)}
        )
        assert done.status_code == 303 and done.headers["location"] == "/ui/health?done=purge&n=0"
