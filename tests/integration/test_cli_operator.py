"""Operator features of the ``orch-serv`` CLI added by issue #8, with the CLI in a subprocess
over the real RabbitMQ and Redis: dead-letter replay and purge letter by letter, bodies from
files and stdin, ``status --watch``, ``--version``, ``--log-format`` and idempotency
conflicts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from orch_serv.store.redis import RedisRunStore
from tests.apps.failing import FLOWS, SERVICE
from tests.conftest import AMQP_URL, REDIS_URL
from tests.integration.cli_support import (
    App,
    Background,
    Cli,
    cli_in_namespace,
    poll,
    publish_raw,
    serve_dev_until_done,
)

pytestmark = pytest.mark.integration

FAILING = App("tests.apps.failing:orchestrator", FLOWS, (SERVICE,))


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """The CLI in a fresh namespace for tests.apps.failing."""
    with cli_in_namespace("t_clio", tmp_path, FAILING) as runner:
        yield runner


@pytest.fixture
def dev(cli: Cli) -> Iterator[Background]:
    """``orch-serv dev tests.apps.failing:orchestrator``, ready; exits 0 on SIGTERM."""
    yield from serve_dev_until_done(cli)


async def publish_default(queue: str, body: bytes) -> None:
    """Publish straight to a queue through the default exchange (routing key = queue)."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(aio_pika.Message(body), queue, mandatory=True)


async def delete_queue(queue: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)


async def run_input(cli: Cli, run_id: str) -> Any:
    store = await RedisRunStore.connect(REDIS_URL, prefix=cli.prefix)
    try:
        record = await store.get_run(run_id)
        assert record is not None
        return record.input
    finally:
        await store.close()


def letters_where(cli: Cli, count: int, proc: Background) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]]:
        letters = cli.dead_letters()
        return letters if len(letters) == count else []

    return poll(f"{count} dead letters", enough, proc)


# -- dead letters --------------------------------------------------------------------------
def test_replay_reports_each_letter_it_could_not_replay(cli: Cli, dev: Background) -> None:
    topology = cli.topology
    service_queue = topology.service_queue(SERVICE)
    asyncio.run(publish_default(topology.orchestrator_queue, b"{via the default exchange"))
    asyncio.run(publish_raw(cli.settings, topology.service_key(SERVICE), b"[1, 2"))
    letters = {d["queue"]: d for d in letters_where(cli, 2, dev)}
    direct, orphan = letters[topology.orchestrator_queue], letters[service_queue]

    unknown = cli("dlq", "purge", direct["id"], "no-such-letter")
    assert unknown.returncode == 1, unknown
    assert unknown.error == "error: dead letter 'no-such-letter' not found; nothing was done"
    unknown = cli("dlq", "replay", "no-such-letter")
    assert unknown.returncode == 1, unknown
    assert "dead letter 'no-such-letter' not found" in unknown.error
    assert len(cli.dead_letters()) == 2  # nothing done

    assert dev.stop() == 0, dev.output()
    asyncio.run(delete_queue(service_queue))  # the orphan's queue is gone: it cannot go back
    replay = cli("dlq", "replay", "--all")
    assert replay.returncode == 1, replay
    assert replay.stdout.strip() == "replayed 1 dead letter(s)"
    assert f"error: dead letter {orphan['id']!r} was not replayed (it stays in the queue)" in (
        replay.error
    )
    assert [d["id"] for d in cli.dead_letters()] == [orphan["id"]]

    purged = cli("dlq", "purge", orphan["id"])
    assert (purged.returncode, purged.stdout.strip()) == (0, "purged 1 dead letter(s)")
    assert cli.dead_letters() == []


# -- bodies --------------------------------------------------------------------------------
def test_a_body_from_a_file_or_stdin(cli: Cli, dev: Background, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.touch()
    body = {"marker": str(marker), "padding": "x" * 200_000}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    from_file = cli("start", "sometimes", "--body", f"@{path}", "--wait", "--format", "json")
    assert from_file.json()["state"] == "SUCCEEDED", (from_file, dev.output())
    assert asyncio.run(run_input(cli, from_file.json()["id"])) == body

    piped = cli("start", "sometimes", "--body", "-", "--format", "json", stdin=json.dumps(body))
    assert asyncio.run(run_input(cli, piped.json()["id"])) == body


@pytest.mark.parametrize(
    ("arg", "content", "message"),
    [
        ("@{dir}/missing.json", None, "error: --body @{dir}/missing.json: no such file"),
        ("@{dir}/bad.json", "{oops", "error: --body @{dir}/bad.json is not valid JSON: "),
        ("@", None, "error: --body @: give a file name after @"),
        ("-", "[1,", "error: --body - (stdin) is not valid JSON: "),
    ],
)
def test_a_bad_body_file_exits_2(
    cli: Cli, tmp_path: Path, arg: str, content: str | None, message: str
) -> None:
    if content is not None and arg.startswith("@"):
        (tmp_path / "bad.json").write_text(content)
    stdin = content if arg == "-" else None
    result = cli("start", "sometimes", "--body", arg.format(dir=tmp_path), stdin=stdin)
    assert result.returncode == 2, result
    assert result.error.startswith(message.format(dir=tmp_path)), result
    assert cli("runs", "--format", "json").json() == []


# -- status --watch ------------------------------------------------------------------------
def test_watch_follows_a_run_until_it_ends(cli: Cli, dev: Background, tmp_path: Path) -> None:
    started = tmp_path / "started"
    run_id = cli("start", "forever", "--body", json.dumps({"started": str(started)})).stdout
    run_id = run_id.strip()
    watch = cli.spawn("status", run_id, "--watch", "--format", "json")

    def lines() -> list[dict[str, Any]]:
        return [json.loads(x) for x in watch.stdout.read_text().splitlines() if x.strip()]

    poll("the handler running", started.exists, dev)
    poll("the watch showing the run", lines, watch)
    assert watch.running()
    assert cli("cancel", run_id).returncode == 0
    assert watch.process.wait(timeout=20) == 1  # CANCELLED: not a success
    shown = lines()
    assert len(shown) >= 2
    assert shown[-1]["run"]["state"] == "CANCELLED" and shown[-1]["run"]["done"] is True
    events = [e for doc in shown for e in doc["events"]]  # each new event shown once
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "run_created" and "run_cancelled" in kinds

    marker = tmp_path / "marker"
    marker.touch()
    done = cli("start", "sometimes", "--body", json.dumps({"marker": str(marker)}))
    table = cli("status", done.stdout.strip(), "--watch")
    assert table.returncode == 0, table
    assert "run_succeeded" in table.stdout and "SUCCEEDED" in table.stdout


def test_watch_gives_up_after_its_timeout(cli: Cli, dev: Background, tmp_path: Path) -> None:
    body = json.dumps({"started": str(tmp_path / "started")})
    run_id = cli("start", "forever", "--body", body).stdout.strip()
    result = cli("status", run_id, "--watch", "--timeout", "0.5")
    assert result.returncode == 1, result
    assert result.error.endswith(f"error: run {run_id!r} is still RUNNING after 0.5 s"), result


# -- global options ------------------------------------------------------------------------
def test_version_and_json_logs(cli: Cli) -> None:
    version = cli("--version")
    assert (version.returncode, version.stdout.strip()) == (0, "orch-serv 0.1.0")

    proc = cli.spawn("--log-format", "json", "--log-level", "debug", "orchestrator", FAILING.path)
    cli.wait_for_flow(proc, FLOWS[0])
    assert proc.stop() == 0, proc.output()
    logged = [line for line in proc.stderr.read_text().splitlines() if line.strip()]
    assert logged, proc.output()
    for line in logged:
        entry = json.loads(line)
        assert {"event", "level", "timestamp"} <= set(entry), line


# -- idempotency keys ----------------------------------------------------------------------
def test_a_key_of_another_flow_is_a_conflict(cli: Cli, dev: Background, tmp_path: Path) -> None:
    body = json.dumps({"started": str(tmp_path / "started")})
    first = cli("start", "forever", "--body", body, "--key", "nightly").stdout.strip()
    again = cli("start", "forever", "--body", body, "--key", "nightly")
    assert again.stdout.strip() == first

    conflict = cli("start", "sometimes", "--body", "{}", "--key", "nightly")
    assert conflict.returncode == 1, conflict
    assert conflict.error == (
        f"error: idempotency key 'nightly' already belongs to run {first!r} of flow "
        "'forever', not flow 'sometimes'; use another key"
    )
    assert [r["id"] for r in cli("runs", "--format", "json").json()] == [first]
