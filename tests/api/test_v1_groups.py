"""A run at a group step over the ``/v1`` API (embedded backends, as ``orch-serv dev``): its
document lists the group's members (counts and run ids, valid against the OpenAPI model), the
dashboard's run page links them, each member is a run of its own, and cancelling the run
cancels the members."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from orch_serv.api import create_app
from orch_serv.api.v1.models import RunStatus
from orch_serv.flow.groups import member_id
from orch_serv.settings import Settings
from tests.api.v1_support import start
from tests.apps.groups import orchestrator
from tests.conftest import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    url = f"memory://{uuid.uuid4().hex}"
    settings = Settings(
        amqp_url=url,
        redis_url=url,
        namespace="groups",
        key_prefix="groups",
        shutdown_grace_seconds=1,
        log_level="WARNING",
    )
    app = create_app(settings, auth=False)  # the dashboard's pages without a login
    async with (
        orchestrator.run(settings, with_services=True),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://groups") as http,
    ):
        yield http


async def _document(client: httpx.AsyncClient, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/runs/{run_id}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


async def test_the_run_document_lists_the_members(client: httpx.AsyncClient) -> None:
    run_id = await start(client, "bounded", [2, 13])  # 13 never ends

    async def one_running() -> dict[str, Any] | None:
        document = await _document(client, run_id)
        groups = document.get("groups") or []
        ready = groups and groups[0]["counts"] == {"RUNNING": 1, "SUCCEEDED": 1}
        return document if ready else None

    document = await eventually(one_running)
    RunStatus.model_validate(document)  # what the OpenAPI document promises
    (group,) = document["groups"]
    assert (group["kind"], group["join"], group["total"]) == ("map", "all", 2)
    assert [m["run_id"] for m in group["members"]] == [member_id(run_id, 0, 1, m) for m in (0, 1)]
    assert [m["state"] for m in group["members"]] == ["SUCCEEDED", "RUNNING"]
    page = await client.get(f"/ui/runs/{run_id}")
    assert page.status_code == 200, page.text
    assert "Group map" in page.text and f'/runs/{member_id(run_id, 0, 1, 1)}"' in page.text
    member = await _document(client, member_id(run_id, 0, 1, 1))
    assert (member["state"], member["flow"]) == ("RUNNING", "bounded~map~each")
    cancelled = await client.post(f"/v1/runs/{run_id}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text

    async def member_cancelled() -> bool:
        state: str = (await _document(client, member_id(run_id, 0, 1, 1)))["state"]
        return state == "CANCELLED"

    await eventually(member_cancelled)
