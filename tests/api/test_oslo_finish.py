"""Finishing a trace and the okdata CLI's status shapes (seed-behaviours 4.6): the summary
the server computes matches what the CLI computes from the events."""

from __future__ import annotations

import asyncio

import pytest

from orch_serv.api.tokens import Scope
from tests.api import oslo_support
from tests.api.oslo_support import Surface, create, event, okdata_status

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

surface = oslo_support.surface


# -- finishing, and the okdata CLI's status (4.6) ----------------------------------------------
async def test_a_finished_ok_event_ends_the_trace(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        before = (await client.get(f"/status/{trace_id}/summary")).json()
        await client.post(f"/status/{trace_id}", json=event("FINISHED", "OK"))
        after = (await client.get(f"/status/{trace_id}/summary")).json()
        items = (await client.get(f"/status/{trace_id}")).json()
    assert before["done"] is False and before["state"] == "RUNNING"
    assert after == {
        "done": True,
        "trace_id": trace_id,
        "trace_status": "FINISHED",
        "trace_event_status": "OK",
        "errors": [],
        "id": trace_id,
        "run_status": "FINISHED",
        "status": "OK",
        "state": "SUCCEEDED",
    }
    assert {k: after[k] for k in okdata_status(trace_id, items)} == okdata_status(trace_id, items)


async def test_a_finished_failed_event_fails_the_trace_with_its_errors(surface: Surface) -> None:
    errors = [{"message": {"nb": "Ugyldig fil", "en": "Invalid file"}}]
    async with surface.client() as client:
        trace_id = await create(client)
        await client.post(
            f"/status/{trace_id}",
            json=event(errors=[{"message": {"nb": "Advarsel", "en": "Warning"}}]),
        )
        await client.post(f"/status/{trace_id}", json=event("FINISHED", "FAILED", errors=errors))
        summary = (await client.get(f"/status/{trace_id}/summary")).json()
        items = (await client.get(f"/status/{trace_id}")).json()
    assert summary["done"] is True and summary["state"] == "FAILED"
    assert summary["trace_event_status"] == summary["status"] == "FAILED"
    assert summary["errors"] == ["Warning", "Invalid file"]
    assert {k: summary[k] for k in okdata_status(trace_id, items)} == okdata_status(trace_id, items)


async def test_the_first_finished_event_decides(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        await client.post(f"/status/{trace_id}", json=event("FINISHED", "OK"))
        late = await client.post(f"/status/{trace_id}", json=event("FINISHED", "FAILED"))
        summary = (await client.get(f"/status/{trace_id}/summary")).json()
        items = (await client.get(f"/status/{trace_id}")).json()
    assert late.status_code == 200 and len(items) == 3
    assert summary["done"] is True and summary["status"] == "OK"
    assert summary["state"] == "SUCCEEDED"


async def test_the_summary_of_an_active_trace_follows_its_last_event(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        started = (await client.get(f"/status/{trace_id}/summary")).json()
        await client.post(f"/status/{trace_id}", json=event("CONTINUE", "FAILED"))
        failing = (await client.get(f"/status/{trace_id}/summary")).json()
        items = (await client.get(f"/status/{trace_id}")).json()
    assert started["done"] is False and started["trace_status"] == "STARTED"
    assert failing["done"] is False
    assert (failing["trace_status"], failing["trace_event_status"]) == ("CONTINUE", "FAILED")
    assert {k: failing[k] for k in okdata_status(trace_id, items)} == okdata_status(trace_id, items)
    legacy = {k: failing[k] for k in ("done", "id", "run_status", "status")}
    assert legacy == {"done": False, "id": trace_id, "run_status": "CONTINUE", "status": "FAILED"}


async def test_the_summary_of_an_unknown_trace_is_404(surface: Surface) -> None:
    async with surface.client(Scope.read) as client:
        response = await client.get("/status/no-such-trace/summary")
    assert response.status_code == 404
    assert response.json() == {"message": "Could not find item: no-such-trace"}


async def test_history_rows_have_every_column_the_cli_prints(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client, operation="upload")
        await client.post(f"/status/{trace_id}", json=event(operation="write"))
        items = (await client.get(f"/status/{trace_id}")).json()
    columns = (
        "trace_event_id",
        "start_time",
        "end_time",
        "domain",
        "domain_id",
        "component",
        "operation",
        "trace_status",
        "trace_event_status",
    )
    assert all(c in items[0] for c in columns)
    assert all(c in items[1] for c in columns if c != "domain_id")


async def test_racing_finished_events_end_the_trace_once(surface: Surface) -> None:
    async with surface.client() as client:
        trace_id = await create(client)
        bodies = [
            event("FINISHED", "OK" if n % 2 else "FAILED", operation=str(n)) for n in range(10)
        ]
        answers = await asyncio.gather(
            *(client.post(f"/status/{trace_id}", json=b) for b in bodies)
        )
        summary = (await client.get(f"/status/{trace_id}/summary")).json()
        recorded = (await client.get(f"/status/{trace_id}")).json()
    assert all(a.status_code == 200 for a in answers)
    assert len(recorded) == 11  # same start_time: in the order recorded
    first = recorded[1]
    assert summary["done"] is True
    assert summary["trace_event_status"] == first["trace_event_status"]
    assert summary["state"] == ("SUCCEEDED" if first["trace_event_status"] == "OK" else "FAILED")
