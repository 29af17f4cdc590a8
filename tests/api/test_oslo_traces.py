"""The Oslo status-api surface over traces: the seed's test cases of creating, reading and
updating a trace (seed-behaviours 4.7) replayed as client calls, the legacy field names,
numbers, and events sharing a start_time; on a real server and on the embedded backends."""

from __future__ import annotations

import uuid

import pytest

from orch_serv.api.tokens import Scope
from tests.api import oslo_support
from tests.api.oslo_support import Surface, create, event, new_status

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

surface = oslo_support.surface


# -- test_create_status / test_statusdata ------------------------------------------------------
async def test_create_returns_a_trace_id_of_the_dataset(surface: Surface) -> None:
    async with surface.client() as client:
        response = await client.post("/status", json=new_status(domain_id="my-dataset/1"))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"trace_id"}
    trace_id = body["trace_id"]
    assert trace_id.startswith("my-dataset-") and len(trace_id) <= 80
    assert uuid.UUID(trace_id.removeprefix("my-dataset-")).version == 4


async def test_create_forces_started_ok_and_ignores_client_ids(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(
            client,
            trace_status="FINISHED",
            trace_event_status="FAILED",
            trace_id="mine",
            trace_event_id="mine-too",
        )
        (item,) = (await client.get(f"/status/{trace_id}")).json()
    assert item["trace_id"] == trace_id != "mine"
    assert item["trace_status"] == "STARTED" and item["trace_event_status"] == "OK"
    assert item["trace_event_id"] != "mine-too" and len(item["trace_event_id"]) == 36


async def test_create_keeps_the_optional_fields_and_drops_unknown_ones(surface: Surface) -> None:
    optional = {
        "user": "service-user-s3-writer",
        "operation": "upload",
        "status_body": {"files_incoming": [], "files_outgoing": []},
        "meta": {"git_rev": "abc123", "function_name": "writer"},
        "s3_path": f"incoming/{uuid.uuid4().hex}/file.xls",
        "duration": 42,
        "exception": "Traceback ...",
        "errors": [{"message": {"nb": "feil", "en": "error"}}],
    }
    async with surface.client() as client:
        trace_id = await create(client, **optional, colour="blue")
        (item,) = (await client.get(f"/status/{trace_id}")).json()
    assert {k: item[k] for k in optional} == optional
    assert "colour" not in item
    assert item["domain"] == "dataset" and item["component"] == "data-uploader"


async def test_create_with_legacy_names(surface: Surface) -> None:
    legacy = {
        "application": "dataset",
        "application_id": "my-app-id/1",
        "date_started": "2020-03-02T12:34:23.042400",
        "date_end": "2020-03-02T12:34:24.042400",
        "handler": "data-uploader",
        "s3path": "incoming/legacy.xls",
        "body": {"files_incoming": ["a"]},
    }
    async with surface.client() as client:
        response = await client.post("/status", json=legacy)
        assert response.status_code == 200, response.text
        trace_id = response.json()["trace_id"]
        (item,) = (await client.get(f"/status/{trace_id}")).json()
    assert trace_id.startswith("my-app-id-")
    assert item["domain"] == "dataset" and item["domain_id"] == "my-app-id/1"
    assert item["start_time"] == legacy["date_started"] and item["end_time"] == legacy["date_end"]
    assert item["component"] == "data-uploader" and item["s3_path"] == "incoming/legacy.xls"
    assert item["status_body"] == {"files_incoming": ["a"]}
    assert not set(legacy) & set(item)


async def test_a_long_dataset_id_is_cut_in_the_prefix_never_in_the_uuid(
    surface: Surface,
) -> None:
    async with surface.client() as client:
        trace_id = await create(client, domain_id="d" * 100 + "/1")
    assert len(trace_id) == 80
    assert uuid.UUID(trace_id[-36:]).version == 4 and trace_id[-37] == "-"


# -- test_get_status ---------------------------------------------------------------------------
async def test_get_returns_every_event_as_an_array(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        assert (await client.post(f"/status/{trace_id}", json=event())).status_code == 200
        response = await client.get(f"/status/{trace_id}")
    assert response.status_code == 200
    items = response.json()
    assert isinstance(items, list) and len(items) == 2
    assert [i["trace_status"] for i in items] == ["STARTED", "CONTINUE"]
    assert {i["trace_id"] for i in items} == {trace_id}


async def test_get_of_an_unknown_trace_is_404(surface: Surface) -> None:
    async with surface.client(Scope.read) as client:
        response = await client.get("/status/no-such-trace")
    assert response.status_code == 404
    assert response.json() == {"message": "Could not find item: no-such-trace"}


async def test_numbers_are_numbers_decimal_safe(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client, duration=618)
        await client.post(f"/status/{trace_id}", json=event(duration=123.456))
        response = await client.get(f"/status/{trace_id}")
    assert '"duration":618,' in response.text.replace(" ", "") or '"duration":618}' in (
        response.text.replace(" ", "")
    )
    assert [i["duration"] for i in response.json()] == [618, 123.456]
    assert isinstance(response.json()[0]["duration"], int)


async def test_every_event_is_returned_past_one_megabyte(surface: Surface) -> None:
    blob = "x" * 100_000
    async with surface.client() as client:
        trace_id = await create(client)
        for n in range(12):
            body = event(meta={"n": n, "blob": blob})
            assert (await client.post(f"/status/{trace_id}", json=body)).status_code == 200
        response = await client.get(f"/status/{trace_id}")
    assert len(response.content) > 1024 * 1024
    items = response.json()
    assert len(items) == 13
    assert [i["meta"]["n"] for i in items[1:]] == list(range(12))


async def test_events_with_the_same_start_time_never_overwrite_each_other(
    surface: Surface,
) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        first = await client.post(f"/status/{trace_id}", json=event(operation="first"))
        second = await client.post(f"/status/{trace_id}", json=event(operation="second"))
        items = (await client.get(f"/status/{trace_id}")).json()
    assert first.json()["trace_event_id"] != second.json()["trace_event_id"]
    assert [i["operation"] for i in items[1:]] == ["first", "second"]


async def test_events_are_ordered_by_start_time(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        await client.post(f"/status/{trace_id}", json=event(start_time="2020-03-02T13:00:00"))
        await client.post(f"/status/{trace_id}", json=event(start_time="2020-03-02T12:50:00"))
        items = (await client.get(f"/status/{trace_id}")).json()
    assert [i["start_time"] for i in items] == [
        "2020-03-02T12:34:23.042400",
        "2020-03-02T12:50:00",
        "2020-03-02T13:00:00",
    ]


# -- test_update_status ------------------------------------------------------------------------
async def test_update_returns_the_stored_item_with_a_new_event_id(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        response = await client.post(f"/status/{trace_id}", json=event(user="me"))
    assert response.status_code == 200
    item = response.json()
    assert item["trace_id"] == trace_id and len(item["trace_event_id"]) == 36
    assert item["trace_status"] == "CONTINUE" and item["user"] == "me"


async def test_update_of_an_unknown_trace_is_404(surface: Surface) -> None:
    async with surface.client() as client:
        response = await client.post("/status/no-such-trace", json=event())
    assert response.status_code == 404
    assert response.json() == {
        "message": "Could not find the requested item to update: no-such-trace"
    }


async def test_update_remaps_every_legacy_name(surface: Surface) -> None:
    legacy = {
        "id": "ignored",
        "application": "dataset",
        "application_id": "my-app-id/1",
        "date_started": "2020-03-02T12:40:00",
        "date_end": "2020-03-02T12:41:00",
        "handler": "s3-writer",
        "run_status": "CONTINUE",
        "status": "FAILED",
        "s3path": f"out/{uuid.uuid4().hex}.csv",
        "body": {"files_outgoing": ["x"]},
        "event_id": "not-remapped",
    }
    async with surface.client() as client:
        trace_id = await create(client)
        response = await client.post(f"/status/{trace_id}", json=legacy)
    assert response.status_code == 200, response.text
    item = response.json()
    assert item == {
        "trace_id": trace_id,
        "trace_event_id": item["trace_event_id"],
        "domain": "dataset",
        "domain_id": "my-app-id/1",
        "start_time": "2020-03-02T12:40:00",
        "end_time": "2020-03-02T12:41:00",
        "trace_status": "CONTINUE",
        "trace_event_status": "FAILED",
        "component": "s3-writer",
        "status_body": {"files_outgoing": ["x"]},
        "s3_path": legacy["s3path"],
    }


async def test_of_an_old_and_a_new_name_the_later_wins(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        body = event()
        del body["trace_event_status"]
        later_new = await client.post(
            f"/status/{trace_id}", json={**body, "status": "FAILED", "trace_event_status": "OK"}
        )
        later_old = await client.post(
            f"/status/{trace_id}", json={**body, "trace_event_status": "OK", "status": "FAILED"}
        )
    assert later_new.json()["trace_event_status"] == "OK"
    assert later_old.json()["trace_event_status"] == "FAILED"
