"""The example ingest and profile flows, tested with the kit: no servers needed."""

from __future__ import annotations

import shutil
from pathlib import Path

from flows.ingest import orchestrator
from orch_serv.constants import RunState
from orch_serv.testing import KitFactory
from services_examples import DATA_DIR


async def test_ingest_publishes_a_dataset(orch_serv_kit: KitFactory, tmp_path: Path) -> None:
    kit = await orch_serv_kit(orchestrator)
    source = tmp_path / "trips.csv"
    shutil.copy(DATA_DIR / "city_bike_trips.csv", source)
    body = {"dataset_id": "trips", "path": str(source), "workdir": str(tmp_path)}
    record = await kit.run("ingest", body)
    assert record.state is RunState.SUCCEEDED, record.error
    await kit.assert_history(
        record.run_id,
        [
            "run_created",
            "step_dispatched",
            "status",
            "step_completed",
            "step_completed",
            "step_completed",
            "run_succeeded",
        ],
    )
    assert (tmp_path / "published" / "trips" / "manifest.json").exists()


async def test_ingest_of_a_ragged_csv_fails_clearly(
    orch_serv_kit: KitFactory, tmp_path: Path
) -> None:
    kit = await orch_serv_kit(orchestrator)
    source = tmp_path / "bad.csv"
    source.write_text("a,b,c\n1,2\n")
    body = {"dataset_id": "bad", "path": str(source), "workdir": str(tmp_path)}
    record = await kit.run("ingest", body)
    assert record.state is RunState.FAILED
    assert record.error is not None and record.error.type == "NonRetryableError"
    assert "do not have the 3 fields" in record.error.message
