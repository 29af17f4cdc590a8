"""The Statusek surface over a real ``orch-serv api`` subprocess: the README session and the
seed's own tests replayed as a client sends them, every rule failure with its exact text,
bad bodies, and the run behind an instance as the CLI shows it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from orch_serv.api.tokens import Scope
from orch_serv.flow.spec import FlowSpec, StepSpec
from orch_serv.statusmodel import Status, StatusModel
from orch_serv.store.base import NewRun
from orch_serv.store.redis import RedisRunStore
from orch_serv.store.statuses import StatusStore
from tests.api.server import ApiServer
from tests.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TASK = "2-POINT LINE TASK"
#: Every rule reachable: A -> B (optional) -> D -> G, A -> C (stop), E (optional) -> F.
RULES = StatusModel(
    "RULES",
    statuses=[
        Status("A"),
        Status("B", "OPTIONAL", after=["A"]),
        Status("C", "STOP-STATUS", after=["A"]),
        Status("D", after=["A", "B"]),
        Status("E", "OPTIONAL"),
        Status("F", "OPTIONAL", after=["E"]),
        Status("G", after=["D"]),
    ],
)


async def call(
    client: httpx.AsyncClient, path: str, body: Any = None, *, method: str = "POST"
) -> dict[str, Any]:
    """One Statusek call as a client makes it: HTTP 200, JSON, the envelope."""
    response = await client.request(method, f"/statusek/{path}", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    assert set(document) >= {"status", "message", "data"}
    return document


async def create(client: httpx.AsyncClient, model: str = TASK, timeout: int = 1000) -> str:
    """A new instance's token."""
    answer = await call(
        client, "instance/create", {"object_name": model, "instance_timeout": timeout}
    )
    assert answer["status"] is True, answer
    token: str = answer["data"]["instance_token"]
    return token


async def publish(api: ApiServer, *models: StatusModel) -> None:
    """Publish models to the server's Redis (as an orchestrator would)."""
    store = await RedisRunStore.connect(REDIS_URL, prefix=api.settings.key_prefix)
    try:
        await StatusStore(store).models.publish(list(models))
    finally:
        await store.close()


def cli(api: ApiServer, *args: str) -> tuple[int, str, str]:
    """``orch-serv ARGS`` on the server's namespace and prefix."""
    import subprocess

    env = {
        **os.environ,
        "ORCH_SERV_REDIS_URL": REDIS_URL,
        "ORCH_SERV_AMQP_URL": str(api.settings.amqp_url),
        "ORCH_SERV_NAMESPACE": api.settings.namespace,
        "ORCH_SERV_KEY_PREFIX": api.settings.key_prefix,
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "orch_serv", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


# -- the seed's tests (seed-behaviours 2.8) ----------------------------------------------------
async def test_create_instance(api: ApiServer) -> None:
    async with api.client(Scope.start) as client:
        unknown = await call(
            client, "instance/create", {"object_name": "xxx", "instance_timeout": 1}
        )
        assert unknown == {
            "status": False,
            "message": "ERROR: Object name 'xxx' is not found",
            "data": {},
        }
        assert await create(client)


async def test_complex_logic(api: ApiServer) -> None:
    async with api.client(Scope.admin) as client:
        token = await create(client, timeout=1000)
        # 1. a new instance has no events (an empty list, not null)
        assert (await call(client, "event/getEvents", {"instance_token": token}))["data"] == {
            "events": []
        }
        set_ = {"instance_token": token}
        # 2. an unknown status
        wrong = await call(client, "status/setStatus", {**set_, "status_name": "WRONG"})
        assert wrong["status"] is False
        assert wrong["message"] == (
            f"ERROR: Status name 'WRONG' is not found for instance '{token}'"
        )
        # 3. FINISHED before STARTED
        early = await call(client, "status/setStatus", {**set_, "status_name": "FINISHED"})
        assert early == {
            "status": False,
            "message": "Not all previos mandatory statuses are set for status 'FINISHED'",
            "data": {},
        }
        # 4. STARTED is not set
        check = await call(client, "status/checkStatusIsSet", {**set_, "status_name": "STARTED"})
        assert (check["status"], check["data"]) == (True, {"status_is_set": False})
        # 5. set STARTED: now it is
        started = await call(client, "status/setStatus", {**set_, "status_name": "STARTED"})
        assert started == {"status": True, "message": "", "data": {}}
        check = await call(client, "status/checkStatusIsSet", {**set_, "status_name": "STARTED"})
        assert check["data"] == {"status_is_set": True}
        # 6. not finished
        finished = await call(client, "instance/checkIsFinished", set_)
        assert finished["data"]["instance_is_finished"] is False
        assert finished["data"]["instanse_is_finished_description"] == ""
        # 7. FINISHED
        done = await call(client, "status/setStatus", {**set_, "status_name": "FINISHED"})
        assert done["status"] is True
        # 8. two events, in order
        events = (await call(client, "event/getEvents", set_))["data"]["events"]
        assert [e["Status"]["StatusName"] for e in events] == ["STARTED", "FINISHED"]
        finished = await call(client, "instance/checkIsFinished", set_)
        assert finished["data"] == {
            "instance_is_finished": True,
            "instanse_is_finished_description": "ALL_MANDATORY_STATUSES_ARE_SET",
            "instance_is_finished_description": "ALL_MANDATORY_STATUSES_ARE_SET",
        }


async def test_close_opened_processes_by_timeout(api: ApiServer) -> None:
    async with api.client(Scope.admin) as client:
        token = await create(client, timeout=0)  # times out at its first access: no sleep
        finished = await call(client, "instance/checkIsFinished", {"instance_token": token})
        assert finished["data"]["instance_is_finished"] is True
        assert finished["data"]["instanse_is_finished_description"] == "TIMEOUT"
        refused = await call(
            client, "status/setStatus", {"instance_token": token, "status_name": "STARTED"}
        )
        assert refused["message"] == f"Instance '{token}' is finished by 'TIMEOUT'"
        events = await call(client, "event/getEvents", {"instance_token": token})
        assert events["status"] is True and events["data"]["events"] == []  # reads still work


# -- the README session ------------------------------------------------------------------------
async def test_the_readme_session(api: ApiServer, tmp_path: Path) -> None:
    readme_model = tmp_path / "readme.yaml"
    readme_model.write_text(
        "name: README TASK\n"
        "statuses:\n"
        "  - {name: RUN, type: MANDATORY, description: Task is running}\n"
        "  - {name: FINISHED, type: MANDATORY, description: Task is finished, after: [RUN]}\n"
    )
    code, out, err = await asyncio.to_thread(cli, api, "models", "load", str(readme_model))
    assert code == 0, err
    assert "published 'README TASK'" in out
    async with api.client(Scope.admin) as client:
        created = await call(
            client, "instance/create", {"object_name": "README TASK", "instance_timeout": 600}
        )
        token = created["instance_token"]  # where the README reads it
        assert created["status"] is True and created["data"]["instance_token"] == token
        set_ = {"instance_token": token}
        run = await call(client, "status/setStatus", {**set_, "status_name": "RUN"})
        assert run["status"] is True
        check = await call(client, "status/checkStatusIsSet", {**set_, "status_name": "FINISHED"})
        assert check["status"] is True and check["status_is_set"] is False
        assert (await call(client, "instance/checkIsFinished", set_))["status"] is True
        await call(client, "status/setStatus", {**set_, "status_name": "FINISHED"})
        events = await call(client, "event/getEvents", set_)
        assert events["status"] is True
        first, second = events["events"]
        assert first["Status"]["StatusName"] == "RUN"
        assert first["Status"]["StatusDesc"] == "Task is running"
        assert first["Status"]["StatusType"] == "MANDATORY"
        assert first["Status"]["StatusID"] == 1 and second["Status"]["StatusID"] == 2
        assert first["Status"]["ObjectID"] == second["Status"]["ObjectID"] > 0
        assert first["EventCreationDt"] <= second["EventCreationDt"]
        assert set(first) == {"Status", "EventMessage", "EventCreationDt"}
    # the instance is a run: the CLI shows it and its history
    code, out, err = await asyncio.to_thread(
        cli, api, "status", token, "--history", "--format", "json"
    )
    assert code == 0, err
    document = json.loads(out)
    run_ = document["run"]
    assert run_["id"] == token and run_["state"] == "SUCCEEDED"
    assert run_["kind"] == "object" and run_["flow"] == "README TASK"
    assert run_["statuses"] == ["FINISHED", "RUN"]
    assert [(e["kind"], e.get("name")) for e in document["events"]] == [
        ("run_created", None),
        ("status", "RUN"),
        ("status", "FINISHED"),
        ("run_succeeded", None),
    ]
    code, out, err = await asyncio.to_thread(cli, api, "status", token, "--history")
    assert code == 0 and "run_succeeded" in out and "RUN" in out, err


# -- every rule failure with its text ---------------------------------------------------------
async def test_every_rule_refusal_has_its_text(api: ApiServer) -> None:
    await publish(api, RULES)
    async with api.client(Scope.admin) as client:
        token = await create(client, "RULES")

        async def set_(name: str) -> dict[str, Any]:
            return await call(
                client, "status/setStatus", {"instance_token": token, "status_name": name}
            )

        assert (await set_("F"))["message"] == (
            "No one previos optional statuses are sets for status 'F'"
        )
        assert (await set_("D"))["message"] == (
            "Not all previos mandatory statuses are set for status 'D'"
        )
        assert (await set_("A"))["status"] is True
        assert (await set_("A"))["message"] == (f"Status 'A' is already set for instance '{token}'")
        assert (await set_("D"))["status"] is True  # the optional B may be skipped
        assert (await set_("B"))["message"] == (
            "At least one next status is set for optional status 'B'"
        )
        assert (await set_("E"))["status"] is True
        stop = await set_("C")
        assert stop["status"] is True
        finished = await call(client, "instance/checkIsFinished", {"instance_token": token})
        assert finished["data"]["instanse_is_finished_description"] == "STOP_STATUS_IS_SET"
        assert (await set_("F"))["message"] == (
            f"Instance '{token}' is finished by 'STOP_STATUS_IS_SET'"
        )
        missing = await call(
            client, "status/setStatus", {"instance_token": "nope", "status_name": "A"}
        )
        assert missing == {
            "status": False,
            "message": "ERROR: Instance token 'nope' is not found",
            "data": {},
        }


async def test_a_stop_status_finishes_the_instance(api: ApiServer) -> None:
    await publish(api, RULES)
    async with api.client(Scope.admin) as client:
        token = await create(client, "RULES")
        body = {"instance_token": token}
        await call(client, "status/setStatus", {**body, "status_name": "A"})
        await call(client, "status/setStatus", {**body, "status_name": "C", "status_message": "x"})
        finished = await call(client, "instance/checkIsFinished", body)
        assert finished["data"]["instanse_is_finished_description"] == "STOP_STATUS_IS_SET"
        events = (await call(client, "event/getEvents", body))["data"]["events"]
        assert [(e["Status"]["StatusType"], e["EventMessage"]) for e in events] == [
            ("MANDATORY", ""),
            ("STOP-STATUS", "x"),
        ]


async def test_check_status_is_ready_to_set(api: ApiServer) -> None:
    await publish(api, RULES)
    async with api.client(Scope.admin) as client:
        token = await create(client, "RULES")
        body = {"instance_token": token}

        async def ready(name: str, token_: str = token) -> dict[str, Any]:
            return await call(
                client,
                "status/checkStatusIsReadyToSet",
                {"instance_token": token_, "status_name": name},
            )

        assert (await ready("A"))["data"] == {
            "status_is_ready_to_set": True,
            "status_is_ready_to_set_description": "",
        }
        not_yet = await ready("D")
        assert not_yet["status"] is True and not_yet["data"] == {
            "status_is_ready_to_set": False,
            "status_is_ready_to_set_description": (
                "Not all previos mandatory statuses are set for status 'D'"
            ),
        }
        await call(client, "status/setStatus", {**body, "status_name": "A"})
        await call(client, "status/setStatus", {**body, "status_name": "D"})
        late = await ready("B")  # a rule outcome, so status true (Statusek said false)
        assert late["status"] is True and late["data"]["status_is_ready_to_set"] is False
        again = await ready("A")
        assert again["data"]["status_is_ready_to_set_description"] == (
            f"Status 'A' is already set for instance '{token}'"
        )
        assert (await ready("WRONG"))["status"] is False
        assert (await ready("A", "nope"))["message"] == "ERROR: Instance token 'nope' is not found"
        assert (await call(client, "status/checkStatusIsSet", {**body, "status_name": "Q"}))[
            "message"
        ] == f"ERROR: Status name 'Q' is not found for instance '{token}'"


# -- bodies -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{bad", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'"text"', "must be a JSON object, not str"),
        (b'{"object_name": "x", "instance_timeout": "600"}', "not a string"),
        (b'{"object_name": "x", "instance_timeout": 1.5}', "not the number 1.5"),
        (b'{"object_name": "x", "instance_timeout": true}', "not a boolean"),
        (b'{"object_name": "x", "instance_timeout": -1}', "between 0 and"),
        (b'{"object_name": "x", "instance_timeout": 99999999999999999999}', "whole number"),
        (b'{"object_name": "x", "instance_timeout": 18446744073709551615}', "between 0 and"),
        (b'{"object_name": 5}', "object_name must be a string"),
        (b'{"object_name": ["x"]}', "not an array"),
    ],
)
async def test_a_bad_body_is_a_parsing_error(api: ApiServer, content: bytes, reason: str) -> None:
    async with api.client(Scope.admin) as client:
        response = await client.post(
            "/statusek/instance/create",
            content=content,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 200
    document = response.json()
    assert document["status"] is False
    assert document["message"] == "Error while parameters parsing"
    assert reason in document["data"]["errors"][0]


async def test_keys_match_case_insensitively_and_any_verb_works(api: ApiServer) -> None:
    async with api.client(Scope.admin) as client:
        created = await call(
            client,
            "instance/create",
            {"OBJECT_NAME": TASK, "Instance_Timeout": 100, "unknown": [1]},
            method="PUT",
        )
        token = created["instance_token"]
        for method, name in (("GET", "STARTED"), ("PATCH", "FINISHED")):
            answer = await call(
                client,
                "status/setStatus",
                {"Instance_Token": token, "STATUS_NAME": name},
                method=method,
            )
            assert answer["status"] is True, answer
        # JSON null: no parameters at all, as Go read it
        empty = await client.request("DELETE", "/statusek/instance/create", content=b"null")
        assert empty.json()["message"] == "ERROR: Object name '' is not found"


async def test_a_missing_timeout_is_the_models_default(api: ApiServer) -> None:
    await publish(api, StatusModel("QUICK", statuses=[Status("A")], timeout_seconds=0))
    async with api.client(Scope.admin) as client:
        never = await call(client, "instance/create", {"object_name": TASK})
        finished = await call(
            client, "instance/checkIsFinished", {"instance_token": never["instance_token"]}
        )
        assert finished["data"]["instance_is_finished"] is False  # not Statusek's 0
        quick = await call(client, "instance/create", {"object_name": "QUICK"})
        finished = await call(
            client, "instance/checkIsFinished", {"instance_token": quick["instance_token"]}
        )
        assert finished["data"]["instanse_is_finished_description"] == "TIMEOUT"


# -- the rest of the surface -------------------------------------------------------------------
async def test_about_home_and_global_events(api: ApiServer) -> None:
    async with api.client(Scope.admin) as client:
        about = await call(client, "about", method="GET")
        assert about["data"]["db_version"] == "2.7.2"
        assert about["data"]["home page"] == "https://github.com/aleksaan/statusek"
        home = await client.get("/statusek/")
        assert home.status_code == 200 and home.text == "Welcome home!"
        assert (await call(client, "status/setGlobalStatus", {"status_name": "deploy"}))[
            "status"
        ] is True
        refused = await call(client, "status/setGlobalStatus", {})
        assert refused["message"] == "Error while parameters parsing"
        events = (await call(client, "event/getGlobalEvents", {}))["data"]["events"]
        assert [e["EventName"] for e in events] == ["deploy"]


async def test_a_flow_run_under_a_model_takes_statuses_by_its_id(api: ApiServer) -> None:
    await publish(api, RULES)
    store = await RedisRunStore.connect(REDIS_URL, prefix=api.settings.key_prefix)
    try:
        step = StepSpec(index=0, name="s", block="s", service="svc", command="s")
        spec = FlowSpec(name="ruled", steps=(step,), status_model="RULES").with_version()
        await store.register_specs([spec], default_flow=None, default_block=None)
        await store.create_run(NewRun("flowrun-1", spec, {}, now=1.0))
    finally:
        await store.close()
    async with api.client(Scope.admin) as client:
        body = {"instance_token": "flowrun-1"}
        assert (await call(client, "status/setStatus", {**body, "status_name": "D"}))[
            "message"
        ] == "Not all previos mandatory statuses are set for status 'D'"
        assert (await call(client, "status/setStatus", {**body, "status_name": "A"}))["status"]
        events = (await call(client, "event/getEvents", body))["data"]["events"]
        assert [e["Status"]["StatusName"] for e in events] == ["A"]
