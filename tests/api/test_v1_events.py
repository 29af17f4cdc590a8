"""A run's events over ``/v1``: pages after a cursor, and the Server-Sent Events stream
followed live to the run's end (keep-alive comments while idle, ``Last-Event-ID``
resumption), over a real server and real runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from tests.api.v1_support import UNKNOWN_RUN, V1, finished, problem, serve_v1, start
from tests.conftest import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def v1() -> AsyncIterator[V1]:
    async with serve_v1({"ORCH_SERV_API_SSE_KEEPALIVE_SECONDS": "0.2"}, stem="v1ev") as env:
        yield env


@dataclass
class Message:
    """One SSE message (or a comment)."""

    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)
    comment: str | None = None

    @property
    def json(self) -> Any:
        return orjson.loads("\n".join(self.data))


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """The messages of an event stream, as a browser's EventSource splits them."""
    current = Message()
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield Message(comment=line[1:].strip())
        elif not line:
            if current.data:
                yield current
            current = Message()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                current.data.append(value)
            elif name == "id":
                current.id = value
            elif name == "event":
                current.event = value


async def _finished_run(client: httpx.AsyncClient) -> tuple[str, list[dict[str, Any]]]:
    run_id = await start(client, "pipeline", {"n": 1})
    await finished(client, run_id)
    events = (await client.get(f"/v1/runs/{run_id}/events")).json()["events"]
    return run_id, events


async def test_events_after_a_cursor(v1: V1) -> None:
    async with v1.client() as client:
        run_id, events = await _finished_run(client)
        page = await client.get(f"/v1/runs/{run_id}/events", params={"after": 3, "limit": 2})
        past = (await client.get(f"/v1/runs/{run_id}/events", params={"after": 1000})).json()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["kind"] == "run_created" and events[-1]["kind"] == "run_succeeded"
    document = page.json()
    assert [e["seq"] for e in document["events"]] == [4, 5]
    assert document["events"] == events[3:5]
    assert (document["next_after"], document["done"], document["run_id"]) == (5, True, run_id)
    assert (past["events"], past["next_after"]) == ([], 1000)


async def test_the_stream_follows_a_run_to_its_end(v1: V1, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    seen: list[Message] = []
    async with v1.client() as client:
        run_id = await start(client, "forever", {"started": str(marker)})
        url = f"/v1/runs/{run_id}/events/stream"
        async with client.stream("GET", url) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            cancelled = False
            async for message in messages(response):
                seen.append(message)
                idle = message.comment == "keep-alive"
                if idle and not cancelled and marker.exists():  # the handler runs, idle
                    answer = await client.post(f"/v1/runs/{run_id}/cancel", json={"reason": "t"})
                    assert answer.status_code == 200
                    cancelled = True
        events = (await client.get(f"/v1/runs/{run_id}/events")).json()["events"]
    frames = [m for m in seen if m.comment is None]
    assert frames[-1].event == "end"
    final = frames[-1].json
    assert (final["id"], final["state"], final["done"]) == (run_id, "CANCELLED", True)
    streamed = [m.json for m in frames[:-1]]
    assert [m.id for m in frames[:-1]] == [str(e["seq"]) for e in streamed]
    assert streamed == events[: len(streamed)]
    assert "run_cancelled" in [e["kind"] for e in streamed]
    assert any(m.comment == "keep-alive" for m in seen)


async def _stream(client: httpx.AsyncClient, url: str, **kwargs: Any) -> list[Message]:
    async with client.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200
        return [m async for m in messages(response)]


async def test_the_stream_resumes_after_last_event_id(v1: V1) -> None:
    async with v1.client() as client:
        run_id, events = await _finished_run(client)
        url = f"/v1/runs/{run_id}/events/stream"
        whole = await _stream(client, url)
        resumed = await _stream(client, url, headers={"Last-Event-ID": "3"})
        after = await _stream(client, url, params={"after": 2})
        both = await _stream(client, url, params={"after": 1}, headers={"Last-Event-ID": "5"})
    assert [m.json for m in whole[:-1]] == events
    assert whole[-1].event == "end" and whole[-1].json["state"] == "SUCCEEDED"
    assert [m.id for m in resumed[:-1]] == [str(e["seq"]) for e in events[3:]]
    assert [m.id for m in after[:-1]] == [str(e["seq"]) for e in events[2:]]
    assert both[0].id == "6"


@pytest.mark.parametrize("last_event_id", ["abc", "-1", "1.5", "99999999999999"])
async def test_bad_last_event_id_is_400(v1: V1, last_event_id: str) -> None:
    async with v1.client() as client:
        run_id = await start(client, "pipeline", {"n": 1})
        response = await client.get(
            f"/v1/runs/{run_id}/events/stream", headers={"Last-Event-ID": last_event_id}
        )
    assert "Last-Event-ID" in problem(response, 400)["detail"]


@pytest.mark.parametrize(
    "path", [f"/v1/runs/{UNKNOWN_RUN}/events", f"/v1/runs/{UNKNOWN_RUN}/events/stream"]
)
async def test_events_of_an_unknown_run_are_404(v1: V1, path: str) -> None:
    async with v1.client() as client:
        response = await client.get(path)
    problem(response, 404)


@pytest.mark.parametrize(
    "params", [{"after": "-1"}, {"after": "x"}, {"limit": "0"}, {"limit": "100000"}]
)
async def test_bad_event_cursors_are_422(v1: V1, params: dict[str, str]) -> None:
    async with v1.client() as client:
        response = await client.get(f"/v1/runs/{UNKNOWN_RUN}/events", params=params)
    problem(response, 422)


async def test_a_stream_closed_by_the_client_leaves_the_server_serving(v1: V1) -> None:
    async with v1.client() as client:
        run_id = await start(client, "stuck", {})
        async with client.stream("GET", f"/v1/runs/{run_id}/events/stream") as response:
            async for message in messages(response):
                if message.id == "1":
                    break
        await eventually(lambda: _ok(client))
        cancelled = await client.post(f"/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200


async def _ok(client: httpx.AsyncClient) -> bool:
    return (await client.get("/healthz")).status_code == 200
