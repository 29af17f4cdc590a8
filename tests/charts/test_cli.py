"""``orch-serv chart load|show|put`` in subprocesses against the real Redis, and the machine's
history through ``orch-serv status --history``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.charts.test_loader import SEED
from tests.conftest import REDIS_URL, unique_name

pytestmark = pytest.mark.integration

ORCH_SERV = Path(sys.executable).parent / "orch-serv"


class Cli:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.env = {
            **os.environ,
            "ORCH_SERV_REDIS_URL": REDIS_URL,
            "ORCH_SERV_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
            "ORCH_SERV_KEY_PREFIX": prefix,
            "ORCH_SERV_NAMESPACE": prefix,
            "COLUMNS": "300",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ORCH_SERV), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def keys(self) -> list[bytes]:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            return list(client.scan_iter(match=f"{self.prefix}:*"))
        finally:
            client.close()


@pytest.fixture
def cli() -> Iterator[Cli]:
    runner = Cli(unique_name("chartcli"))
    yield runner
    keys = runner.keys()
    if keys:
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(*keys)
        client.close()


def test_load_show_put_and_history(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "states.yaml"
    path.write_text(SEED)
    loaded = cli("chart", "load", str(path))
    assert loaded.returncode == 0, loaded.stderr
    assert "chart states version" in loaded.stdout and "the default chart" in loaded.stdout
    assert "machine states@default created at green_state" in loaded.stdout
    again = cli("chart", "load", str(path))
    assert "machine states@default kept at green_state" in again.stdout

    put = cli("chart", "put", "states", "green_state")
    assert put.returncode == 0 and "now at red_state" in put.stdout
    refused = cli("chart", "put", "states", "green_state")
    assert refused.returncode == 1
    assert "'green_state' is not the current state ('red_state' is)" in refused.stderr
    missing = cli("chart", "put", "states", "red_state", "--machine", "nobody")
    assert missing.returncode == 1 and "has no machine 'nobody'" in missing.stderr

    shown = cli("chart", "show", "states")
    assert (
        shown.returncode == 0 and "red_state" in shown.stdout and "states@default" in shown.stdout
    )
    document = json.loads(cli("chart", "show", "states", "--format", "json").stdout)
    assert document["machines"][0]["state"] == "red_state"
    machine = json.loads(
        cli("chart", "show", "states", "--machine", "default", "--format", "json").stdout
    )
    assert machine["counters"]["green_state"]["value"] == 1

    history = cli("status", "states@default", "--history", "--format", "json")
    assert history.returncode == 0, history.stderr
    kinds = [e["kind"] for e in json.loads(history.stdout)["events"]]
    assert kinds == ["run_created", "status", "heartbeat", "step_completed", "status"]
    table = cli("status", "states@default", "--history")
    assert "green_state -> red_state" in table.stdout
    reset = cli("chart", "load", str(path), "--reset")
    assert "machine states@default created at green_state" in reset.stdout


def test_a_bad_chart_exits_2_and_stores_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SEED.replace("name: red_state\n      when", "name: purple\n      when"))
    result = cli("chart", "load", str(path))
    assert result.returncode == 2
    assert f"{path}:9: states[0].target.name: 'purple' is not a state" in result.stderr
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("current_state: !!python/object/apply:os.system ['touch pwned']\n")
    result = cli("chart", "load", str(unsafe))
    assert result.returncode == 2 and "is not allowed" in result.stderr
    assert cli("chart", "load", str(tmp_path / "none.yaml")).returncode == 2
    assert cli("chart", "show", "bad").returncode == 1
    assert cli("chart", "show", "a@b").returncode == 2
    assert cli.keys() == []
