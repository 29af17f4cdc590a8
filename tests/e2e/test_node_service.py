"""End to end: a service written in Node.js (``services_examples/node``, amqplib, no orch_serv
code) takes part in flows next to Python services, over the real RabbitMQ and Redis.

The npm packages are installed here (``npm ci``, once per session, skipped when
``node_modules`` already holds exactly what ``package-lock.json`` pins). Node and npm are part
of the development machine and of CI: without them these tests fail, they do not skip.
Each test runs the Python orchestrator and Python service ``prep`` in process and the Node
service ``textops`` as a subprocess, all on a namespace and key prefix of the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from orch_serv.constants import EventKind, RunState
from orch_serv.orchestrator.app import Running
from orch_serv.settings import Settings
from orch_serv.store.base import Event
from orch_serv.store.redis import RedisRunStore
from orch_serv.transport.base import DeadLetter
from orch_serv.transport.rabbit import RabbitTransport
from tests.conftest import AMQP_URL, eventually
from tests.e2e.node_support import (
    NODE_DIR,
    NODE_SERVICE,
    WAIT,
    NodeService,
    app,
    delete_service_queues,
    drain_dead_letters,
    envelope,
    installed_matches_lock,
    of_kind,
    publish_raw,
    run_to_exit,
)

pytestmark = pytest.mark.integration


# -- npm packages ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def node_executable() -> Iterator[str]:
    """The path of ``node``, once ``npm ci`` has installed the service's packages (fails the
    test when node or npm is missing, or the install fails)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "node and npm are required for the Node.js service tests (install Node.js 18 or "
            f"later): node={node!r}, npm={npm!r}"
        )
    lock_path = Path(tempfile.gettempdir()) / "orch_serv-npm-ci.lock"
    with lock_path.open("w") as lock:  # one install at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed_matches_lock():
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci failed in {NODE_DIR}:\n{done.stdout}\n{done.stderr}")
    yield node


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
async def running(
    backends: tuple[RabbitTransport, RedisRunStore], settings: Settings
) -> AsyncIterator[Running]:
    """The orchestrator and the Python service, in this process."""
    transport, store = backends
    try:
        async with app.attach(transport, store, settings, with_services=True) as running:
            yield running
    finally:
        await delete_service_queues(settings)


@pytest.fixture
async def node(
    node_executable: str, settings: Settings, running: Running, tmp_path: Path
) -> AsyncIterator[NodeService]:
    """The Node service on the test's namespace, once it says it consumes its queue; at the
    end it must exit 0 on SIGTERM."""
    env = {
        **os.environ,
        "ORCH_SERV_AMQP_URL": AMQP_URL,
        "ORCH_SERV_NAMESPACE": settings.namespace,
        "ORCH_SERV_NODE_SERVICE": NODE_SERVICE,
        "ORCH_SERV_SHUTDOWN_GRACE_SECONDS": "20",
    }
    log = tmp_path / "node-service.log"
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            node_executable,
            "src/main.js",
            cwd=NODE_DIR,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    service = NodeService(process, log)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT):
            line = await process.stdout.readline()
        if not line:
            pytest.fail(f"the Node service exited before it was ready:\n{service.log_text()}")
        ready = json.loads(line)
        assert ready["event"] == "ready"
        assert ready["queue"] == f"{settings.namespace}.svc.{NODE_SERVICE}"
        yield service
    finally:
        code = await service.terminate()
    assert code == 0, service.log_text()


# -- tests -------------------------------------------------------------------------------------
def test_the_node_unit_tests_pass(node_executable: str) -> None:
    done = subprocess.run(
        [node_executable, "--test", "test/"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def test_a_flow_through_python_and_node_succeeds_with_heartbeats_and_lineage(
    running: Running, node: NodeService, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    body = {"text": "  hello node world  ", "pieces": 2, "wait_for": str(release)}
    run_id = await running.start("mixed", body)

    progress = [
        {"pieces_done": 1, "of": 2},
        {"pieces_done": 2, "of": 2},
        {"waiting_for": "release"},
    ]

    async def waiting() -> list[Event]:
        events = await running.events(run_id)
        beats = [e.body for e in of_kind(events, EventKind.HEARTBEAT)]
        return events if all(p in beats for p in progress) else []

    # the Node command is running (and held until `release` exists): its heartbeats are
    # recorded (in the order the orchestrator happened to handle them)
    events = await eventually(waiting, timeout=WAIT)
    (started,) = of_kind(events, EventKind.STEP_STARTED)  # the start notice
    assert (started.step, started.component) == (1, NODE_SERVICE)
    beats = of_kind(events, EventKind.HEARTBEAT)
    assert [(e.step, e.component) for e in beats] == [(1, NODE_SERVICE)] * 3
    assert sorted(json.dumps(e.body) for e in beats) == sorted(json.dumps(p) for p in progress)
    release.touch()

    record = await running.wait(run_id, timeout=WAIT)
    assert record.state is RunState.SUCCEEDED, (record.error, node.log_text())
    assert record.result["text"] == "HELLO NODE WORLD" and record.result["words"] == 3
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", record.result["node_sha256"])

    async def with_status() -> list[Event]:  # status events may land after the run ends
        events = await running.events(run_id)
        return events if of_kind(events, EventKind.STATUS) else []

    events = await eventually(with_status, timeout=WAIT)
    completed = of_kind(events, EventKind.STEP_COMPLETED)
    assert [(e.step_name, e.component) for e in completed] == [
        ("trim", "prep"),
        ("upper", NODE_SERVICE),
        ("count", "prep"),
    ]
    assert completed[1].duration_ms is not None and completed[1].duration_ms >= 0
    (status,) = of_kind(events, EventKind.STATUS)
    assert (status.name, status.step, status.component) == ("uppercased", 1, NODE_SERVICE)
    assert status.body == {
        "inputs": [f"sha256:{hashlib.sha256(b'hello node world').hexdigest()}"],
        "outputs": [record.result["node_sha256"]],
    }
    assert (await running.get(run_id)).statuses == frozenset({"uppercased"})


@pytest.mark.parametrize(
    ("start", "error_type", "message", "details"),
    [
        (
            {"flow": "refused", "body": {"text": "x", "reason": "closed on sundays"}},
            "Refused",
            "refused: closed on sundays",
            {"reason": "closed on sundays"},
        ),
        (
            {"target": "upper", "body": {"text": 42}},
            "ValidationError",
            "body failed validation: 1 error(s)",
            {"errors": [{"type": "type", "loc": ["text"], "msg": "must be string"}]},
        ),
        (
            {"target": "nope", "body": {}},
            "UnknownCommand",
            "service 'textops' has no command 'nope'; known: ['uppercase', 'refuse']",
            None,
        ),
    ],
    ids=["handler-error", "validation-error", "unknown-command"],
)
async def test_a_failing_node_command_fails_the_run_with_its_error(
    running: Running,
    node: NodeService,
    start: dict[str, Any],
    error_type: str,
    message: str,
    details: dict[str, Any] | None,
) -> None:
    run_id = await running.start(**start)
    record = await running.wait(run_id, timeout=WAIT)
    assert record.state is RunState.FAILED, node.log_text()
    assert record.error is not None
    assert (record.error.type, record.error.message) == (error_type, message)
    assert record.error.retryable is False and record.error.details == details
    (failed,) = of_kind(await running.events(run_id), EventKind.STEP_FAILED)
    assert failed.component == NODE_SERVICE and failed.error == record.error


async def test_what_the_node_service_cannot_process_is_dead_lettered_not_lost(
    running: Running,
    node: NodeService,
    backends: tuple[RabbitTransport, RedisRunStore],
    settings: Settings,
) -> None:
    transport, _ = backends
    reply = json.dumps(envelope("reply", "a-reply")).encode()
    not_envelope = b'{"kind": "command"}'
    batch = b"[" + not_envelope + b" , " + reply.replace(b"a-reply", b"batched-reply") + b"]"
    command = json.dumps(envelope("command", "old-protocol", command="uppercase")).encode()
    sent: list[tuple[bytes, str, dict[str, Any]]] = [
        (b"{not json", "bad-json", {"x-orch-serv-protocol": 1}),
        (command, "old-protocol", {"x-orch-serv-protocol": "1"}),
        (reply, "a-reply", {"x-orch-serv-protocol": 1, "x-orch-serv-kind": "reply"}),
        (batch, "batch:x:2", {"x-orch-serv-protocol": 1, "x-orch-serv-batch": 2}),
    ]
    for body, sent_id, headers in sent:
        await publish_raw(settings, body, sent_id, headers)

    async def five() -> list[DeadLetter]:
        letters = await transport.dead_letters()
        return letters if len(letters) >= 5 else []

    letters = await eventually(five, timeout=WAIT)
    assert len(letters) == 5, node.log_text()
    by_body = {letter.body: letter for letter in letters}
    expected: dict[bytes, tuple[str | None, str]] = {
        b"{not json": ("bad-json", r"malformed JSON: .+"),
        command: ("old-protocol", r"unsupported protocol version '1', expected 1"),
        reply: ("a-reply", r"expected a command, got a reply message"),
        not_envelope: (None, r"invalid envelope: message_id: .+; run_id: .+"),
        reply.replace(b"a-reply", b"batched-reply"): (
            "batched-reply",
            r"expected a command, got a reply message",
        ),
    }
    assert set(by_body) == set(expected)
    for body, (_, reason) in expected.items():
        letter = by_body[body]
        assert re.fullmatch(reason, letter.reason), letter.reason
        assert letter.origin_queue == f"{settings.namespace}.svc.{NODE_SERVICE}"
        assert letter.routing_key == f"svc.{NODE_SERVICE}"
        dead_id = letter.headers["x-orch-serv-dead-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", dead_id) and letter.message_id == dead_id
        assert "x-orch-serv-batch" not in letter.headers
    # the AMQP properties of the copies: the original's message_id (or the dead id) and type
    raw = {m.body: m for m in await drain_dead_letters(settings)}
    assert set(raw) == set(expected)
    for body, (message_id, _) in expected.items():
        copy = raw[body]
        assert copy.message_id == (message_id or by_body[body].headers["x-orch-serv-dead-id"])
        assert copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert raw[reply].type is None and raw[not_envelope].type is None  # none was sent / a batch
    # the consumer went on: a run through the Node service still succeeds
    run_id = await running.start(target="upper", body={"text": "still here"})
    record = await running.wait(run_id, timeout=WAIT)
    assert record.state is RunState.SUCCEEDED and record.result["text"] == "STILL HERE"


async def test_runs_started_together_all_succeed(running: Running, node: NodeService) -> None:
    # commands dispatched in one turn of the orchestrator's loop usually reach the Node service as
    # one batch (docs/protocol.md, section 2): each is executed and answered on its own
    texts = [f"text {i}" for i in range(12)]
    run_ids = await asyncio.gather(
        *(running.start(target="upper", body={"text": text}) for text in texts)
    )
    records = [await running.wait(run_id, timeout=WAIT) for run_id in run_ids]
    assert [r.state for r in records] == [RunState.SUCCEEDED] * len(texts), node.log_text()
    assert [r.result["text"] for r in records] == [text.upper() for text in texts]


async def test_a_cancel_notice_stops_the_running_node_command(
    running: Running, node: NodeService, tmp_path: Path
) -> None:
    never = tmp_path / "never"  # the command would wait for ever
    run_id = await running.start("mixed", {"text": "stop me", "wait_for": str(never)})

    async def waiting() -> bool:
        events = await running.events(run_id)
        return {"waiting_for": "never"} in [e.body for e in of_kind(events, EventKind.HEARTBEAT)]

    await eventually(waiting, timeout=WAIT)
    record = await running.cancel(run_id)
    assert record.state is RunState.CANCELLED

    async def late() -> list[Event]:  # the handler stopped and answered `Cancelled`
        return of_kind(await running.events(run_id), EventKind.LATE_RESULT)

    (result,) = await eventually(late, timeout=WAIT)
    assert result.component == NODE_SERVICE and result.error is not None
    assert (result.error.type, result.error.retryable) == ("Cancelled", False)
    assert '"event":"command_cancelled"' in node.log_text()


async def test_sigterm_lets_the_running_command_finish_then_exits_0(
    running: Running, node: NodeService, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    run_id = await running.start("mixed", {"text": "drain me", "wait_for": str(release)})

    async def waiting() -> bool:
        events = await running.events(run_id)
        return {"waiting_for": "release"} in [e.body for e in of_kind(events, EventKind.HEARTBEAT)]

    await eventually(waiting, timeout=WAIT)
    node.process.send_signal(signal.SIGTERM)

    async def stopping() -> bool:
        return '"event":"stopping"' in node.log_text()

    await eventually(stopping, timeout=WAIT)
    release.touch()
    assert await node.exit_code() == 0, node.log_text()
    record = await running.wait(run_id, timeout=WAIT)
    assert record.state is RunState.SUCCEEDED, node.log_text()
    assert record.result["text"] == "DRAIN ME"


async def test_a_bad_setting_stops_the_service_with_a_clear_error(node_executable: str) -> None:
    code, log = await run_to_exit(node_executable, {"ORCH_SERV_NAMESPACE": "no spaces allowed"})
    assert code == 2
    assert "ORCH_SERV_NAMESPACE must match" in log and '\\"no spaces allowed\\"' in log


async def test_queue_arguments_unlike_the_orchestrators_stop_the_service_with_a_clear_error(
    node_executable: str, running: Running, settings: Settings
) -> None:
    # the orchestrator declared classic queues; a service configured for quorum queues
    # cannot declare them (RabbitMQ: 406 PRECONDITION_FAILED) and says why
    env = {"ORCH_SERV_NAMESPACE": settings.namespace, "ORCH_SERV_QUORUM_QUEUES": "true"}
    code, log = await run_to_exit(node_executable, env)
    assert code == 1
    assert "PRECONDITION_FAILED - inequivalent arg 'x-queue-type'" in log
    assert "ORCH_SERV_QUORUM_QUEUES and ORCH_SERV_DELIVERY_LIMIT must be those" in log


async def test_losing_its_queue_makes_the_service_exit_1_with_the_reason(
    node_executable: str, running: Running, settings: Settings
) -> None:
    process = await asyncio.create_subprocess_exec(
        node_executable,
        "src/main.js",
        cwd=NODE_DIR,
        env={
            **os.environ,
            "ORCH_SERV_AMQP_URL": AMQP_URL,
            "ORCH_SERV_NAMESPACE": settings.namespace,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        assert json.loads(await process.stdout.readline())["event"] == "ready"
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(f"{settings.namespace}.svc.{NODE_SERVICE}")
    async with asyncio.timeout(WAIT):
        _, stderr = await process.communicate()
    assert process.returncode == 1
    assert "the broker cancelled the consumer" in stderr.decode()


def test_package_files_are_committed_and_node_modules_ignored() -> None:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text(encoding="utf-8"))
    package = json.loads((NODE_DIR / "package.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert set(package["dependencies"]) >= {"amqplib", "ajv", "ajv-formats"}
    with contextlib.suppress(FileNotFoundError, subprocess.CalledProcessError):
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(NODE_DIR / "node_modules")],
            cwd=NODE_DIR,
            check=False,
        )
        assert ignored.returncode == 0, "services_examples/node/node_modules must be git-ignored"
