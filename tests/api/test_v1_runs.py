"""``/v1/runs``: start (flow, block, idempotency key), get (the CLI's status document, with
what a stuck run waits for), cancel and retry, over a real server and real runs; and every
bad input answered with a 4xx problem document."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from orch_serv import render
from orch_serv.orchestrator.client import Client
from tests.api.v1_support import FLOWS, UNKNOWN_RUN, V1, finished, problem, serve_v1, start
from tests.conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def v1() -> AsyncIterator[V1]:
    async with serve_v1(stem="v1runs") as env:
        yield env


async def test_start_runs_a_flow_to_its_end(v1: V1) -> None:
    async with v1.client() as client:
        response = await client.post("/v1/runs", json={"flow": "pipeline", "body": {"n": 3}})
        assert response.status_code == 201
        started = response.json()
        assert response.headers["location"] == f"/v1/runs/{started['id']}"
        assert started["flow"] == "pipeline" and started["kind"] == "flow"
        assert started["state"] in ("PENDING", "RUNNING", "SUCCEEDED")
        final = await finished(client, started["id"])
    assert final["state"] == "SUCCEEDED"
    assert final["result"] == {"n": 3, "trail": ["one", "two", "three"]}


async def test_start_runs_a_single_block(v1: V1) -> None:
    async with v1.client() as client:
        response = await client.post("/v1/runs", json={"block": "two", "body": {"n": 1}})
        assert response.status_code == 201
        final = await finished(client, response.json()["id"])
    assert (final["kind"], final["flow"], final["state"]) == ("block", "two", "SUCCEEDED")


async def test_same_key_same_flow_is_the_same_run(v1: V1) -> None:
    key = f"k-{uuid.uuid4().hex}"
    async with v1.client() as client:
        first = await client.post(
            "/v1/runs", json={"flow": "pipeline", "body": {"n": 1}, "key": key}
        )
        again = await client.post(
            "/v1/runs", json={"flow": "pipeline", "body": {"n": 2}, "key": key}
        )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again.json()["key"] == key


async def test_same_key_another_flow_is_409(v1: V1) -> None:
    key = f"k-{uuid.uuid4().hex}"
    async with v1.client() as client:
        run_id = await start(client, "pipeline", {"n": 1}, key=key)
        response = await client.post("/v1/runs", json={"flow": "stuck", "body": {}, "key": key})
    document = problem(response, 409)
    assert (document["key"], document["run_id"], document["flow"]) == (key, run_id, "pipeline")


async def test_unknown_flow_is_404_with_the_known_names(v1: V1) -> None:
    async with v1.client() as client:
        response = await client.post("/v1/runs", json={"flow": "pipelin", "body": {}})
        block = await client.post("/v1/runs", json={"block": "nope", "body": {}})
    document = problem(response, 404)
    assert document["known"] == FLOWS
    assert "did you mean 'pipeline'?" in document["detail"]
    assert problem(block, 404)["known"] == ["two"]


async def test_get_is_the_cli_status_document(v1: V1) -> None:
    async with v1.client() as client:
        run_id = await start(client, "pipeline", {"n": 5})
        final = await finished(client, run_id)
    record = await Client(None, v1.running.store).get(run_id)
    assert final == render.run_json(record)
    assert "waiting" not in final


async def test_a_run_waiting_in_a_queue_says_so(v1: V1) -> None:
    async with v1.client() as client:
        run_id = await start(client, "stuck", {})

        async def dispatched() -> dict[str, object] | None:
            document: dict[str, object] = (await client.get(f"/v1/runs/{run_id}")).json()
            return document if document["phase"] == "DISPATCHED" else None

        document = await eventually(dispatched)
        assert document["waiting"] == {
            "queue": f"{v1.server.settings.namespace}.svc.nobody",
            "role": "service",
            "service": "nobody",
            "exists": True,
            "messages": 1,
            "consumers": 0,
            "hint": f"no consumer on queue {v1.server.settings.namespace}.svc.nobody: "
            "is the service 'nobody' running?",
        }
        cancelled = await client.post(f"/v1/runs/{run_id}/cancel", json={"reason": "test"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"


async def test_cancel_a_running_run_then_again_is_409(v1: V1, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    async with v1.client() as client:
        run_id = await start(client, "forever", {"started": str(marker)})
        await eventually(lambda: _exists(marker))
        response = await client.post(f"/v1/runs/{run_id}/cancel")
        assert response.status_code == 200
        assert (response.json()["state"], response.json()["done"]) == ("CANCELLED", True)
        again = await client.post(f"/v1/runs/{run_id}/cancel", json={"compensate": True})
        events = (await client.get(f"/v1/runs/{run_id}/events")).json()["events"]
    assert "already CANCELLED" in problem(again, 409)["detail"]
    assert "run_cancelled" in [e["kind"] for e in events]


async def _exists(path: Path) -> bool:
    return await asyncio.to_thread(path.exists)


async def test_retry_a_failed_run(v1: V1, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    async with v1.client() as client:
        run_id = await start(client, "sometimes", {"marker": str(marker)})
        assert (await finished(client, run_id))["state"] == "FAILED"
        marker.touch()
        response = await client.post(f"/v1/runs/{run_id}/retry")
        assert response.status_code == 200 and response.json()["attempt"] == 2
        final = await finished(client, run_id)
        again = await client.post(f"/v1/runs/{run_id}/retry")
    assert final["state"] == "SUCCEEDED"
    assert "only FAILED or TIMED_OUT runs can be retried" in problem(again, 409)["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/runs/{UNKNOWN_RUN}"),
        ("POST", f"/v1/runs/{UNKNOWN_RUN}/cancel"),
        ("POST", f"/v1/runs/{UNKNOWN_RUN}/retry"),
    ],
)
async def test_unknown_run_is_404(v1: V1, method: str, path: str) -> None:
    async with v1.client() as client:
        response = await client.request(method, path)
    assert f"run {UNKNOWN_RUN!r} not found" in problem(response, 404)["detail"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 422, "body"),
        (b'{"flow": 3}', 422, "flow"),
        (b'{"flow": "pipeline", "block": "two"}', 422, "not both"),
        (b'{"flow": "pipeline", "bdy": {}}', 422, "bdy"),
        (b'{"flow": "pipeline", "key": ""}', 422, "key"),
        (b'{"flow": "pipeline", "deadline": -1}', 422, "deadline"),
        (b'{"flow": ""}', 422, "flow"),
        (b'{"flow": "pipeline", "body": {"x": 1180591620717411303424}}', 422, "64-bit"),
        (b'{"flow": "pipeline", "body": ' + b"[" * 200 + b"]" * 200 + b"}", 422, "nested"),
        (b"[" * 100_000, 400, "pars"),
    ],
)
async def test_bad_start_bodies_are_4xx(v1: V1, body: bytes, status: int, says: str) -> None:
    async with v1.client() as client:
        response = await client.post(
            "/v1/runs", content=body, headers={"content-type": "application/json"}
        )
    assert says in problem(response, status)["detail"]


@pytest.mark.parametrize(
    "body",
    [b"{oops", b'{"compensate": "maybe"}', b'{"reason": 5}', b'{"why": "x"}'],
)
async def test_bad_cancel_bodies_are_4xx(v1: V1, body: bytes) -> None:
    async with v1.client() as client:
        response = await client.post(
            f"/v1/runs/{UNKNOWN_RUN}/cancel",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_start_too_large_for_a_message_is_413(v1: V1) -> None:
    huge = "x" * (v1.server.settings.max_message_bytes + 10)
    async with v1.client() as client:
        response = await client.post(
            "/v1/runs", json={"flow": "pipeline", "body": {"n": 1, "pad": huge}}
        )
    assert response.status_code == 413
