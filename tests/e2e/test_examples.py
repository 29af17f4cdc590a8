"""End-to-end tests of the example pipeline (services_examples + flows.ingest).

The tests marked ``integration`` run the orchestrator and the three services in-process on
the real RabbitMQ and Redis, each under its own namespace and key prefix (removed afterwards).
The others test the pure functions of the services and need no servers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import redis.asyncio as aioredis

from flows.ingest import orchestrator
from orch_serv import EventKind, EventStatus, NonRetryableError, Running, RunState, Settings
from orch_serv.transport.base import Topology
from services_examples import DATA_DIR
from services_examples.transformer import column_stats, normalise_table, snake_case
from services_examples.validator import read_csv
from tests.conftest import AMQP_URL, REDIS_URL

WAIT = 30.0
SERVICES = ("validator", "transformer", "publisher")


# -- fixtures --------------------------------------------------------------------------------
async def _remove_namespace(settings: Settings) -> None:
    """Delete the queues, exchanges and Redis keys a test namespace left behind."""
    topology = Topology(settings.namespace)
    amqp_url, redis_url = settings.urls()
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        queues = [topology.orchestrator_queue, topology.dead_letter_queue]
        queues += [topology.service_queue(s) for s in SERVICES]
        for queue in queues:
            await channel.queue_delete(queue)
        for exchange in (
            topology.exchange,
            topology.dead_letter_exchange,
            topology.control_exchange,
        ):
            await channel.exchange_delete(exchange)
    client = aioredis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{settings.key_prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    """The example orchestrator with its services, on a namespace of its own."""
    prefix = f"t_{uuid.uuid4().hex[:8]}"
    settings = Settings(namespace=prefix, key_prefix=prefix, amqp_url=AMQP_URL, redis_url=REDIS_URL)
    try:
        async with orchestrator.run(settings, with_services=True) as app:
            yield app
    finally:
        await _remove_namespace(settings)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory holding copies of the sample CSV files under ``incoming/``."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for sample in DATA_DIR.glob("*.csv"):
        shutil.copy(sample, incoming / sample.name)
    return tmp_path


def load_json(path: Path | str) -> Any:
    """A JSON file's content."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_jsonl(path: Path) -> list[Any]:
    """The records of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_names(folder: Path, pattern: str = "*") -> list[str]:
    """Sorted names of the files of ``folder`` matching ``pattern``."""
    return sorted(p.name for p in folder.glob(pattern))


def csv_body(workdir: Path, name: str, dataset_id: str | None = None) -> dict[str, Any]:
    """The start body of a run on ``<workdir>/incoming/<name>``."""
    return {
        "dataset_id": dataset_id or Path(name).stem,
        "path": str(workdir / "incoming" / name),
        "workdir": str(workdir),
    }


# -- the ingest flow -------------------------------------------------------------------------
@pytest.mark.integration
async def test_ingest_publishes_a_good_csv(running: Running, workdir: Path) -> None:
    run_id = await running.start("ingest", csv_body(workdir, "city_bike_trips.csv"))
    record = await running.wait(run_id, timeout=WAIT)

    assert record.state is RunState.SUCCEEDED, record.error
    events = await running.events(run_id)
    completed = [e for e in events if e.kind is EventKind.STEP_COMPLETED]
    assert [e.step_name for e in completed] == ["validate_csv", "transform", "publish"]

    result = record.result
    published = Path(result["path"])
    manifest_path = Path(result["manifest_path"])
    folder = workdir / "published" / "city_bike_trips"
    assert published == folder / f"{result['sha256'][:12]}.jsonl"
    assert manifest_path == folder / "manifest.json"
    assert file_names(folder) == [published.name, "manifest.json"]
    assert sha256_of(published) == result["sha256"]
    assert result["url"] == f"file://{published}"

    records = load_jsonl(published)
    assert result["rows"] == len(records) == 8  # the blank line of the sample is dropped
    assert list(records[0]) == [
        "trip_id",
        "started_at",
        "ended_at",
        "duration_s",
        "start_station",
        "end_station",
        "bike_type",
    ]
    assert records[2]["start_station"] == "Tjuvholmen"  # trimmed

    manifest = load_json(manifest_path)
    assert manifest["dataset_id"] == "city_bike_trips"
    assert manifest["rows"] == 8
    assert manifest["sha256"] == result["sha256"]
    assert manifest["source"] == str(workdir / "incoming" / "city_bike_trips.csv")
    assert manifest["published_at"] == result["published_at"]
    # added by the flow's post hook on the transform step
    assert manifest["provenance"]["run_id"] == run_id
    assert manifest["provenance"]["flow"] == "ingest"

    lineage = {e.name: e.body for e in events if e.kind is EventKind.STATUS}
    transformed = str(workdir / "transformed" / "city_bike_trips.jsonl")
    assert lineage == {
        "validated": {"files_incoming": [manifest["source"]], "files_outgoing": []},
        "transformed": {"files_incoming": [manifest["source"]], "files_outgoing": [transformed]},
        "published": {
            "files_incoming": [transformed],
            "files_outgoing": [str(published), str(manifest_path)],
        },
    }
    assert {"validated", "transformed", "published"} <= record.statuses


@pytest.mark.integration
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("a,b,c\n1,2,3\n4,5\n6,7,8,9\n", "line 3 has 2, line 4 has 4", id="ragged"),
        pytest.param("", "is empty", id="empty"),
        pytest.param("a,b,c\n", "no data rows", id="header-only"),
        pytest.param("a,,c\n1,2,3\n", "header column(s) 2 have no name", id="unnamed"),
    ],
)
async def test_ingest_fails_on_a_malformed_csv(
    running: Running, workdir: Path, content: str, expected: str
) -> None:
    (workdir / "incoming" / "bad.csv").write_text(content, encoding="utf-8")
    run_id = await running.start("ingest", csv_body(workdir, "bad.csv"))
    record = await running.wait(run_id, timeout=WAIT)

    assert record.state is RunState.FAILED
    assert record.error is not None
    assert record.error.type == "NonRetryableError"
    assert record.error.retryable is False
    assert expected in record.error.message
    assert record.error.message.startswith("bad.csv")

    events = await running.events(run_id)
    failed = [e for e in events if e.kind is EventKind.STEP_FAILED]
    assert [(e.step_name, e.error.type if e.error else None) for e in failed] == [
        ("validate_csv", "NonRetryableError")
    ]
    assert not [e for e in events if e.kind is EventKind.STEP_COMPLETED]
    statuses = [e for e in events if e.kind is EventKind.STATUS]
    assert [(e.name, e.status) for e in statuses] == [("validation_failed", EventStatus.FAILED)]
    assert not (workdir / "transformed").exists()


@pytest.mark.integration
async def test_ingest_rejects_a_missing_file_and_a_bad_dataset_id(
    running: Running, workdir: Path
) -> None:
    missing = await running.start("ingest", csv_body(workdir, "nope.csv"))
    unsafe = await running.start("ingest", csv_body(workdir, "library_loans.csv", "../etc"))

    record = await running.wait(missing, timeout=WAIT)
    assert record.state is RunState.FAILED and record.error is not None
    assert record.error.type == "NonRetryableError"
    assert "not found" in record.error.message

    record = await running.wait(unsafe, timeout=WAIT)
    assert record.state is RunState.FAILED and record.error is not None
    assert record.error.type == "ValidationError"  # the body model refuses the dataset id
    assert record.error.retryable is False


# -- the profile flow ------------------------------------------------------------------------
@pytest.mark.integration
async def test_profile_flow_returns_column_stats(running: Running, workdir: Path) -> None:
    run_id = await running.start("profile", csv_body(workdir, "air_quality_readings.csv"))
    record = await running.wait(run_id, timeout=WAIT)

    assert record.state is RunState.SUCCEEDED, record.error
    profile = record.result
    assert profile["dataset_id"] == "air_quality_readings"
    assert profile["rows"] == 9
    stats = {c["name"]: c for c in profile["columns"]}
    assert list(stats) == ["station_id", "timestamp", "pm10", "pm2_5", "no2", "temperature_c"]
    assert stats["station_id"] == {
        "name": "station_id",
        "non_empty": 9,
        "distinct": 3,
        "numeric": False,
        "min": None,
        "max": None,
    }
    assert stats["pm10"]["numeric"] and (stats["pm10"]["min"], stats["pm10"]["max"]) == (9.5, 31.2)
    assert stats["no2"]["non_empty"] == 8  # one reading is missing
    assert stats["temperature_c"]["max"] == -6.8

    events = await running.events(run_id)
    assert [e.name for e in events if e.kind is EventKind.STATUS] == ["validated", "profiled"]


# -- idempotent publication ------------------------------------------------------------------
@pytest.mark.integration
async def test_publishing_twice_is_idempotent(running: Running, workdir: Path) -> None:
    body = csv_body(workdir, "library_loans.csv")
    first = await running.wait(await running.start("ingest", body), timeout=WAIT)
    second = await running.wait(await running.start("ingest", body), timeout=WAIT)

    assert first.state is second.state is RunState.SUCCEEDED
    assert second.result == first.result  # same path, checksum and first published_at
    folder = workdir / "published" / "library_loans"
    assert file_names(folder) == [
        f"{first.result['sha256'][:12]}.jsonl",
        "manifest.json",
    ]
    manifest = load_json(folder / "manifest.json")
    assert manifest["provenance"]["run_id"] == first.run_id

    events = await running.events(second.run_id)
    published = [e for e in events if e.kind is EventKind.STATUS and e.name == "published"]
    assert [e.message for e in published] == ["already published; nothing written"]


@pytest.mark.integration
async def test_single_block_runs_of_transform_and_publish(running: Running, workdir: Path) -> None:
    transformed = await running.wait(
        await running.start(target="transform", body=csv_body(workdir, "weather_daily.csv")),
        timeout=WAIT,
    )
    assert transformed.state is RunState.SUCCEEDED, transformed.error
    assert transformed.result["rows"] == 7

    runs = [
        await running.wait(
            await running.start(target="publish", body=transformed.result), timeout=WAIT
        )
        for _ in range(2)
    ]
    assert [r.state for r in runs] == [RunState.SUCCEEDED, RunState.SUCCEEDED]
    assert runs[0].result == runs[1].result
    assert len(file_names(workdir / "published" / "weather_daily", "*.jsonl")) == 1
    manifest = load_json(runs[0].result["manifest_path"])
    assert manifest["provenance"] is None  # no flow, so no post hook


# -- pure functions (no servers) -------------------------------------------------------------
def test_normalise_table_trims_renames_and_drops_empty_rows() -> None:
    header = [" Trip ID ", "startTime", "PM2.5 (ug/m3)", "HTTPStatus", "", "trip id"]
    rows = [
        [" 1 ", "08:00", " 12.5", "200", "x", "a"],
        ["  ", "", " ", "", "", ""],
        ["2", "08:05 ", "", "404", "", "b"],
    ]
    columns, records = normalise_table(header, rows)

    assert columns == [
        "trip_id",
        "start_time",
        "pm2_5_ug_m3",
        "http_status",
        "column_5",
        "trip_id_2",
    ]
    assert records == [
        {
            "trip_id": "1",
            "start_time": "08:00",
            "pm2_5_ug_m3": "12.5",
            "http_status": "200",
            "column_5": "x",
            "trip_id_2": "a",
        },
        {
            "trip_id": "2",
            "start_time": "08:05",
            "pm2_5_ug_m3": None,
            "http_status": "404",
            "column_5": None,
            "trip_id_2": "b",
        },
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Start Time", "start_time"),
        ("startTime", "start_time"),
        (" START-TIME ", "start_time"),
        ("temperatureC", "temperature_c"),
        ("Duration (s)", "duration_s"),
        ("Grünerløkka Stasjon", "grünerløkka_stasjon"),
        ("***", ""),
    ],
)
def test_snake_case(raw: str, expected: str) -> None:
    assert snake_case(raw) == expected


def test_column_stats_only_reports_min_max_for_numbers() -> None:
    numeric = column_stats("n", ["3", "-1.5", None, "1e2", "3"])
    assert (numeric.non_empty, numeric.distinct, numeric.numeric) == (4, 3, True)
    assert (numeric.min, numeric.max) == (-1.5, 100.0)
    mixed = column_stats("m", ["1", "two", "nan"])
    assert (mixed.numeric, mixed.min, mixed.max) == (False, None, None)
    empty = column_stats("e", [None, None])
    assert (empty.non_empty, empty.numeric) == (0, False)


def test_every_sample_csv_is_well_formed() -> None:
    samples = sorted(DATA_DIR.glob("*.csv"))
    assert len(samples) >= 3
    for sample in samples:
        table = read_csv(sample)
        assert table.rows and all(len(row) == len(table.header) for row in table.rows)


def test_read_csv_reports_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n6,7,8\n9\n10\n", encoding="utf-8")
    with pytest.raises(NonRetryableError) as caught:
        read_csv(path)
    assert caught.value.message == (
        "ragged.csv: 4 row(s) do not have the 2 fields of the header: "
        "line 3 has 1, line 5 has 3, line 6 has 1 (and 1 more)"
    )
