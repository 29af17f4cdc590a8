"""``/v1/deadletters``: list, show, replay and purge (some or all) over a real server, with
dead letters made the way they are in production: an orchestrator refusing a malformed
message."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.v1_support import V1, problem, serve_v1
from tests.conftest import eventually
from tests.integration.cli_support import publish_raw

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def v1() -> AsyncIterator[V1]:
    async with serve_v1(stem="v1dlq") as env:
        yield env


async def _letters(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/deadletters", params={"limit": 500})
    assert response.status_code == 200
    letters: list[dict[str, Any]] = response.json()["dead_letters"]
    return letters


async def _dead_letter(v1: V1, client: httpx.AsyncClient) -> dict[str, Any]:
    """Make one dead letter (a malformed message to the orchestrator); its full document."""
    body = f"not json {uuid.uuid4().hex}"
    before = {d["id"] for d in await _letters(client)}
    await publish_raw(v1.server.settings, "orchestrator", body.encode())

    async def arrived() -> dict[str, Any] | None:
        for letter in await _letters(client):
            if letter["id"] not in before:
                shown: dict[str, Any] = (await client.get(f"/v1/deadletters/{letter['id']}")).json()
                if shown["body"] == body:
                    return shown
        return None

    found: dict[str, Any] = await eventually(arrived)
    return found


async def test_list_and_show(v1: V1) -> None:
    async with v1.client() as client:
        letter = await _dead_letter(v1, client)
        listed = [d for d in await _letters(client) if d["id"] == letter["id"]]
    assert letter["queue"] == f"{v1.server.settings.namespace}.orchestrator"
    assert letter["reason"] and letter["headers"]
    assert listed == [{k: v for k, v in letter.items() if k not in ("headers", "body")}]


async def test_replay_one(v1: V1) -> None:
    async with v1.client() as client:
        letter = await _dead_letter(v1, client)
        response = await client.post("/v1/deadletters/replay", json={"ids": [letter["id"]]})
        assert response.status_code == 200
        assert response.json() == {
            "ok": True,
            "replayed": [letter["id"]],
            "failed": [],
            "missing": [],
        }

        async def back_again() -> bool:  # refused again: a new dead letter, same body
            for d in await _letters(client):
                shown = (await client.get(f"/v1/deadletters/{d['id']}")).json()
                if d["id"] != letter["id"] and shown["body"] == letter["body"]:
                    return True
            return False

        await eventually(back_again)
        assert letter["id"] not in {d["id"] for d in await _letters(client)}


async def test_unknown_ids_are_404_and_nothing_is_done(v1: V1) -> None:
    async with v1.client() as client:
        letter = await _dead_letter(v1, client)
        before = await _letters(client)
        for action in ("replay", "purge"):
            response = await client.post(
                f"/v1/deadletters/{action}", json={"ids": [letter["id"], "no-such-letter"]}
            )
            assert (
                "'no-such-letter' not found; nothing was done" in problem(response, 404)["detail"]
            )
        shown = await client.get("/v1/deadletters/no-such-letter")
        assert await _letters(client) == before
    problem(shown, 404)


async def test_purge_one_then_all(v1: V1) -> None:
    async with v1.client() as client:
        first = await _dead_letter(v1, client)
        await _dead_letter(v1, client)
        one = await client.post("/v1/deadletters/purge", json={"ids": [first["id"]]})
        assert one.json() == {"purged": 1}
        assert first["id"] not in {d["id"] for d in await _letters(client)}
        remaining = len(await _letters(client))
        everything = await client.post("/v1/deadletters/purge", json={"all": True})
        assert everything.json() == {"purged": remaining}
        assert await _letters(client) == []
        replayed = await client.post("/v1/deadletters/replay", json={"all": True})
    assert replayed.json() == {"ok": True, "replayed": [], "failed": [], "missing": []}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{nope", 400),
        (b"{}", 422),
        (b'{"ids": []}', 422),
        (b'{"ids": ["a"], "all": true}', 422),
        (b'{"ids": "a"}', 422),
        (b'{"all": "yes"}', 422),
        (b'{"all": false}', 422),
        (b'{"ids": ["a"], "extra": 1}', 422),
    ],
)
@pytest.mark.parametrize("action", ["replay", "purge"])
async def test_bad_selections_are_4xx(v1: V1, action: str, body: bytes, status: int) -> None:
    async with v1.client() as client:
        response = await client.post(
            f"/v1/deadletters/{action}", content=body, headers={"content-type": "application/json"}
        )
    problem(response, status)


@pytest.mark.parametrize("limit", ["0", "501", "many"])
async def test_bad_list_limit_is_422(v1: V1, limit: str) -> None:
    async with v1.client() as client:
        response = await client.get("/v1/deadletters", params={"limit": limit})
    problem(response, 422)
