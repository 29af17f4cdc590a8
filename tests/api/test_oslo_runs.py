"""A trace IS a run: the Oslo surface over the runs of a flow (made by an in-process
orchestrator on the server's namespace), and a trace created over HTTP as the CLI shows it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import BaseModel

from orch_serv import (
    Block,
    Flow,
    FlowBlock,
    FlowBuilder,
    HandlerContext,
    NonRetryableError,
    Orchestrator,
    Service,
)
from orch_serv.api.tokens import Scope
from orch_serv.backends import open_backends
from orch_serv.constants import RunState
from orch_serv.orchestrator.app import Running
from tests.api.server import ApiServer
from tests.conftest import AMQP_URL, REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


class Upload(BaseModel):
    """A file a step processes."""

    path: str
    fail: bool = False


other = Service("other")


@other.command("ingest")
async def ingest(body: Upload, ctx: HandlerContext) -> Upload:
    """Records the lineage of the file, then fails on demand."""
    await ctx.status(
        "ingested",
        lineage={"files_incoming": [body.path], "files_outgoing": [f"{body.path}.parquet"]},
    )
    if body.fail:
        raise NonRetryableError("the file is not a spreadsheet", type="BadFile")
    return body


class Ingest(Block):
    name_block = "ingest"
    service = "other"


class Ingestion(Flow):
    name_flow = "ingestion"
    steps_flow = FlowBuilder(FlowBlock(Ingest))


app = Orchestrator(flows=[Ingestion], services=[other])


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def running(api: ApiServer) -> AsyncIterator[Running]:
    """An orchestrator and its service on the API server's namespace and key prefix."""
    async with (
        open_backends(api.settings) as (transport, store),
        app.attach(transport, store, api.settings, with_services=True) as running,
    ):
        yield running


def client(api: ApiServer, scope: Scope = Scope.admin) -> httpx.AsyncClient:
    """A client of ``/status-api``."""
    return httpx.AsyncClient(base_url=f"{api.url}/status-api", headers=api.headers(scope))


async def finished_run(running: Running, *, fail: bool = False, key: str | None = None) -> str:
    """A run of ``ingestion`` that has ended; its id."""
    path = f"incoming/{uuid.uuid4().hex}.xlsx"
    run_id = await running.start("ingestion", {"path": path, "fail": fail}, key=key)
    record = await running.wait(run_id, timeout=30)
    assert record.state is (RunState.FAILED if fail else RunState.SUCCEEDED)
    return run_id


def b64(path: str) -> str:
    return base64.b64encode(path.encode()).decode()


async def test_a_flow_run_is_a_trace_of_its_events(api: ApiServer, running: Running) -> None:
    run_id = await finished_run(running)
    events = await running.events(run_id)
    async with client(api, Scope.read) as c:
        items = (await c.get(f"/status/{run_id}")).json()
        again = (await c.get(f"/status/{run_id}")).json()
    assert len(items) == len(events)
    assert {i["trace_id"] for i in items} == {run_id}
    assert items == again  # stable event ids
    assert len({i["trace_event_id"] for i in items}) == len(items)
    assert all(len(i["trace_event_id"]) == 36 for i in items)
    assert [i["meta"]["seq"] for i in items] == [e.seq for e in events]
    assert items[0]["trace_status"] == "STARTED" and items[0]["operation"] == "run_created"
    assert items[-1]["trace_status"] == "FINISHED" and items[-1]["trace_event_status"] == "OK"
    assert all(i["trace_status"] == "CONTINUE" for i in items[1:-1])
    assert {i["domain"] for i in items} == {"flow"}
    (status,) = [i for i in items if i["operation"] == "ingested"]
    assert status["component"] == "other" and status["trace_event_status"] == "OK"
    assert status["status_body"]["files_incoming"][0].startswith("incoming/")
    completed = [i for i in items if i["operation"] == "step_completed"]
    assert completed and isinstance(completed[0]["duration"], int | float)


async def test_a_failed_flow_run_finishes_failed_with_its_error(
    api: ApiServer, running: Running
) -> None:
    run_id = await finished_run(running, fail=True)
    async with client(api, Scope.read) as c:
        items = (await c.get(f"/status/{run_id}")).json()
        summary = (await c.get(f"/status/{run_id}/summary")).json()
    last = items[-1]
    assert (last["trace_status"], last["trace_event_status"]) == ("FINISHED", "FAILED")
    assert summary["done"] is True and summary["state"] == "FAILED"
    assert summary["trace_event_status"] == summary["status"] == "FAILED"
    assert "the file is not a spreadsheet" in summary["errors"]
    failed = [i for i in items if i["operation"] == "step_failed"]
    assert failed[0]["errors"][0]["message"]["nb"] == "the file is not a spreadsheet"
    assert failed[0]["errors"][0]["type"] == "BadFile"


async def test_the_summary_of_a_succeeded_run(api: ApiServer, running: Running) -> None:
    run_id = await finished_run(running)
    async with client(api, Scope.read) as c:
        summary = (await c.get(f"/status/{run_id}/summary")).json()
    assert {k: summary[k] for k in ("done", "id", "run_status", "status")} == {
        "done": True,
        "id": run_id,
        "run_status": "FINISHED",
        "status": "OK",
    }


async def test_status_from_path_finds_a_run_by_its_lineage(
    api: ApiServer, running: Running
) -> None:
    run_id = await finished_run(running)
    record = await running.get(run_id)
    path = record.input["path"]
    async with client(api, Scope.read) as c:
        incoming = await c.get(f"/status-from-path/{b64(path)}")
        outgoing = await c.get(f"/status-from-path/{b64(path + '.parquet')}")
    assert incoming.json() == {"id": run_id, "trace_id": run_id}
    assert outgoing.json() == {"id": run_id, "trace_id": run_id}


async def test_status_from_path_finds_a_run_by_its_key(api: ApiServer, running: Running) -> None:
    key = f"uploads/{uuid.uuid4().hex}.csv"
    run_id = await finished_run(running, key=key)
    async with client(api, Scope.read) as c:
        response = await c.get(f"/status-from-path/{b64(key)}")
    assert response.json() == {"id": run_id, "trace_id": run_id}


async def test_an_event_can_be_appended_to_a_flow_run(api: ApiServer, running: Running) -> None:
    run_id = await finished_run(running)
    path = f"published/{uuid.uuid4().hex}.json"
    body = {
        "domain": "dataset",
        "start_time": "2099-01-01T00:00:00",
        "end_time": "2099-01-01T00:00:01",
        "trace_status": "CONTINUE",
        "trace_event_status": "OK",
        "component": "publisher",
        "s3_path": path,
    }
    async with client(api) as c:
        appended = await c.post(f"/status/{run_id}", json=body)
        items = (await c.get(f"/status/{run_id}")).json()
        found = await c.get(f"/status-from-path/{b64(path)}")
        finished = await c.post(f"/status/{run_id}", json={**body, "trace_status": "FINISHED"})
    assert appended.status_code == 200
    assert items[-1] == appended.json()  # the latest start_time sorts last
    assert found.json()["trace_id"] == run_id
    assert finished.status_code == 409
    assert "finishes when its flow does" in finished.json()["message"]
    assert (await running.get(run_id)).state is RunState.SUCCEEDED


async def orch_serv(api: ApiServer, *args: str) -> Any:
    """``orch-serv ARGS --format json`` on the server's namespace; its JSON output."""
    env = {
        **os.environ,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_NAMESPACE": api.settings.namespace,
        "ORCH_SERV_KEY_PREFIX": api.settings.key_prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orch_serv",
        *args,
        "--format",
        "json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def test_a_trace_shows_in_the_cli_as_a_run(api: ApiServer) -> None:
    create = {
        "domain": "dataset",
        "domain_id": "cli-dataset/1",
        "start_time": "2020-03-02T12:34:23",
        "end_time": "2020-03-02T12:34:24",
        "component": "data-uploader",
    }
    finish = {
        **create,
        "trace_status": "FINISHED",
        "trace_event_status": "OK",
        "operation": "_set_finished_status",
    }
    async with client(api) as c:
        trace_id = (await c.post("/status", json=create)).json()["trace_id"]
        await c.post(f"/status/{trace_id}", json=finish)
    shown = await orch_serv(api, "status", trace_id, "--history")
    run, events = shown["run"], shown["events"]
    assert (run["id"], run["kind"], run["flow"], run["state"]) == (
        trace_id,
        "trace",
        "dataset",
        "SUCCEEDED",
    )
    assert run["done"] is True
    assert [e["kind"] for e in events] == ["status", "status"]
    assert events[1]["name"] == "_set_finished_status"
    assert events[1]["body"]["trace_status"] == "FINISHED"
