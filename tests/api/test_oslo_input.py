"""Bad input to the Oslo status-api surface: every mistake is a 4xx with a ``{"message"}``
body (the seed crashed into a 502 on malformed JSON, a missing field or invalid base64),
never a 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from orch_serv.api.tokens import Scope
from tests.api.server import ApiServer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CREATE = {
    "domain": "dataset",
    "domain_id": "my-dataset/1",
    "start_time": "2020-03-02T12:34:23",
    "end_time": "2020-03-02T12:34:24",
    "component": "data-uploader",
}
EVENT = {
    "domain": "dataset",
    "start_time": "2020-03-02T12:35:00",
    "end_time": "2020-03-02T12:35:01",
    "trace_status": "CONTINUE",
    "trace_event_status": "OK",
    "component": "s3-writer",
}


def client(api: ApiServer) -> httpx.AsyncClient:
    """An admin client of ``/status-api``."""
    return httpx.AsyncClient(
        base_url=f"{api.url}/status-api", headers=api.headers(Scope.admin), timeout=30
    )


async def trace(api: ApiServer) -> str:
    """A fresh trace id."""
    async with client(api) as c:
        response = await c.post("/status", json=CREATE)
    trace_id: str = response.json()["trace_id"]
    return trace_id


def message(response: httpx.Response, status: int) -> str:
    """The message of an error answer, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message"} and isinstance(body["message"], str)
    text: str = body["message"]
    return text


@pytest.mark.parametrize(
    "raw",
    [b"{bad", b"", b"null", b"[1, 2]", b'"text"', b"42", b'{"a": NaN}', b'{"a": "\\ud800"}'],
    ids=["broken", "empty", "null", "array", "string", "number", "nan", "lone-surrogate"],
)
async def test_a_body_that_is_not_a_json_object_is_400(api: ApiServer, raw: bytes) -> None:
    trace_id = await trace(api)
    headers = {"content-type": "application/json"}
    async with client(api) as c:
        created = await c.post("/status", content=raw, headers=headers)
        updated = await c.post(f"/status/{trace_id}", content=raw, headers=headers)
    for response in (created, updated):
        text = message(response, 400)
        assert text.startswith(("Invalid JSON", "The request body must be a JSON object"))


@pytest.mark.parametrize("field", ["domain", "domain_id", "start_time", "end_time", "component"])
async def test_create_without_a_required_field_is_400(api: ApiServer, field: str) -> None:
    body = {k: v for k, v in CREATE.items() if k != field}
    async with client(api) as c:
        response = await c.post("/status", json=body)
    assert message(response, 400) == f"Invalid request: {field}: Field required"


@pytest.mark.parametrize(
    "field",
    ["domain", "start_time", "end_time", "trace_status", "trace_event_status", "component"],
)
async def test_update_without_a_required_field_is_400(api: ApiServer, field: str) -> None:
    trace_id = await trace(api)
    body = {k: v for k, v in EVENT.items() if k != field}
    async with client(api) as c:
        response = await c.post(f"/status/{trace_id}", json=body)
    assert message(response, 400) == f"Invalid request: {field}: Field required"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("domain", 5),
        ("component", None),
        ("start_time", ["2020"]),
        ("trace_status", "DONE"),
        ("trace_event_status", "ok"),
        ("duration", "618"),
        ("duration", True),
        ("duration", 9223372036854775808),
        ("status_body", ["files"]),
        ("meta", "git"),
        ("errors", {"message": "x"}),
        ("errors", ["x"]),
        ("user", 1),
        ("s3_path", {"key": "x"}),
        ("exception", 3.5),
    ],
)
async def test_a_mistyped_field_is_400_naming_it(api: ApiServer, field: str, value: Any) -> None:
    trace_id = await trace(api)
    async with client(api) as c:
        response = await c.post(f"/status/{trace_id}", json={**EVENT, field: value})
        if field not in ("trace_status", "trace_event_status"):  # ignored by create
            created = await c.post("/status", json={**CREATE, field: value})
            assert field in message(created, 400)
    assert field in message(response, 400)


async def test_a_bad_body_is_refused_before_the_trace_is_looked_up(api: ApiServer) -> None:
    async with client(api) as c:
        response = await c.post("/status/no-such-trace", json={"domain": "dataset"})
    assert message(response, 400).startswith("Invalid request: ")


@pytest.mark.parametrize("encoded", ["***", "a", "bXkvcGF0aC@=", "%FF%FE"])
async def test_invalid_base64_is_400(api: ApiServer, encoded: str) -> None:
    async with client(api) as c:
        response = await c.get(f"/status-from-path/{encoded}")
    assert message(response, 400).startswith("Invalid base64 path: ")


async def test_an_empty_path_is_400_and_one_of_no_text_404(api: ApiServer) -> None:
    async with client(api) as c:
        empty = await c.get("/status-from-path/")
        padding = await c.get("/status-from-path/====")
        no_text = await c.get("/status-from-path/_w==")  # one byte, not UTF-8
    assert message(empty, 400) == "Invalid base64 path: "
    assert message(padding, 400) == "Invalid base64 path: ===="
    assert message(no_text, 404) == "Could not find item"


async def test_a_streamed_body_over_the_limit_is_413(api: ApiServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"domain": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    async with client(api) as c:
        response = await c.post(
            "/status", content=chunks(), headers={"content-type": "application/json"}
        )
    assert "larger than" in message(response, 413)


async def test_an_unknown_route_and_a_wrong_method_answer_a_message(api: ApiServer) -> None:
    async with client(api) as c:
        unknown = await c.get("/no-such-route")
        method = await c.delete("/status/x")
    assert message(unknown, 404) == "Not Found"
    assert message(method, 405) == "Method Not Allowed"
