"""``GET /v1/runs``: filters (flow, state, key, creation time window) and cursor pagination
in a stable order, over real runs; bad cursors and bad parameters are 4xx."""

from __future__ import annotations

import base64
import functools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from orch_serv.orchestrator.client import Client
from tests.api.v1_support import V1, finished, problem, serve_v1, start
from tests.conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@dataclass
class Runs:
    """The runs this module made, each list oldest first."""

    v1: V1
    pipeline: list[str]
    stuck: list[str]
    block: list[str]
    key: str

    @property
    def newest_first(self) -> list[str]:
        return list(reversed(self.pipeline + self.stuck + self.block))


async def _running(client: httpx.AsyncClient, run_id: str) -> bool:
    return bool((await client.get(f"/v1/runs/{run_id}")).json()["state"] == "RUNNING")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def runs() -> AsyncIterator[Runs]:
    async with serve_v1(stem="v1list") as v1, v1.client() as client:
        key = f"k-{uuid.uuid4().hex}"
        pipeline = [await start(client, "pipeline", {"n": i}) for i in range(4)]
        pipeline.append(await start(client, "pipeline", {"n": 4}, key=key))
        stuck = [await start(client, "stuck", {}) for _ in range(3)]
        block = []
        for i in range(2):
            response = await client.post("/v1/runs", json={"block": "two", "body": {"n": i}})
            block.append(response.json()["id"])
        for run_id in pipeline + block:
            await finished(client, run_id)
        for run_id in stuck:
            await eventually(functools.partial(_running, client, run_id))
        yield Runs(v1, pipeline, stuck, block, key)


async def _all_pages(client: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    """Every run id of a listing, page by page; (ids, pages)."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/runs", params=query)
        assert response.status_code == 200, response.text
        document = response.json()
        ids += [r["id"] for r in document["runs"]]
        pages += 1
        cursor = document["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 50


async def test_pages_of_a_flow_are_newest_first_without_gaps(runs: Runs) -> None:
    async with runs.v1.client() as client:
        ids, pages = await _all_pages(client, flow="pipeline", limit=2)
    assert ids == list(reversed(runs.pipeline))
    assert pages >= 3


async def test_every_run_newest_first_by_creation(runs: Runs) -> None:
    async with runs.v1.client() as client:
        ids, _ = await _all_pages(client, limit=3)
        first = (await client.get("/v1/runs", params={"limit": 3})).json()
    assert ids == runs.newest_first
    assert [r["id"] for r in first["runs"]] == runs.newest_first[:3]
    store_record = await Client(None, runs.v1.running.store).get(runs.block[-1])
    assert first["runs"][0]["created_at"] == datetime.fromtimestamp(
        store_record.created_at, UTC
    ).isoformat(timespec="milliseconds")


async def test_state_filter_pages_without_duplicates(runs: Runs) -> None:
    async with runs.v1.client() as client:
        succeeded, _ = await _all_pages(client, state="SUCCEEDED", limit=2)
        running, _ = await _all_pages(client, state="RUNNING", flow="stuck", limit=2)
        none, _ = await _all_pages(client, state="FAILED")
    assert len(succeeded) == len(set(succeeded)) == 7
    assert set(succeeded) == set(runs.pipeline + runs.block)
    assert running == list(reversed(runs.stuck))
    assert none == []


async def test_key_filter(runs: Runs) -> None:
    async with runs.v1.client() as client:
        found = (await client.get("/v1/runs", params={"key": runs.key})).json()
        other_flow = (
            await client.get("/v1/runs", params={"key": runs.key, "flow": "stuck"})
        ).json()
        unknown = (await client.get("/v1/runs", params={"key": "no-such-key"})).json()
    assert [r["id"] for r in found["runs"]] == [runs.pipeline[-1]]
    assert other_flow["runs"] == [] and unknown["runs"] == []


async def test_creation_time_window(runs: Runs) -> None:
    store = runs.v1.running.store
    created = [(await Client(None, store).get(r)).created_at for r in runs.pipeline]
    since = datetime.fromtimestamp(created[1] - 0.0005, UTC).isoformat()
    until = datetime.fromtimestamp(created[3] + 0.0005, UTC).isoformat()
    async with runs.v1.client() as client:
        window, _ = await _all_pages(client, created_since=since, created_until=until, limit=2)
        after, _ = await _all_pages(client, created_since=since, flow="pipeline")
        naive = since.removesuffix("+00:00")
        same, _ = await _all_pages(client, created_since=naive, created_until=until)
    assert window == list(reversed(runs.pipeline[1:4])) == same
    assert after == list(reversed(runs.pipeline[1:]))


def _cursor(data: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "e30",  # {}
        _cursor([1, 2]),
        _cursor({"o": "created", "s": "x", "i": "run"}),
        _cursor({"o": "created", "s": 1.0, "i": 5}),
        _cursor({"o": "created", "s": True, "i": "run"}),
        _cursor({"o": "state:RUNNING", "s": 1.0, "i": "run"}),
    ],
)
async def test_bad_cursor_is_400(runs: Runs, cursor: str) -> None:
    async with runs.v1.client() as client:
        response = await client.get("/v1/runs", params={"cursor": cursor})
    assert problem(response, 400)["title"] == "Bad cursor"


async def test_cursor_of_another_order_is_400(runs: Runs) -> None:
    async with runs.v1.client() as client:
        page = (await client.get("/v1/runs", params={"limit": 1})).json()
        response = await client.get(
            "/v1/runs", params={"state": "SUCCEEDED", "cursor": page["next_cursor"]}
        )
    assert "another order" in problem(response, 400)["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"state": "DONE"},
        {"created_since": "yesterday"},
        {"created_since": "2026-01-02T00:00:00Z", "created_until": "2026-01-01T00:00:00Z"},
        {"flow": ""},
    ],
)
async def test_bad_parameters_are_422(runs: Runs, params: dict[str, str]) -> None:
    async with runs.v1.client() as client:
        response = await client.get("/v1/runs", params=params)
    problem(response, 422)
