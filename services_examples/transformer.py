"""The ``transformer`` service: normalises a CSV file to JSON Lines, and profiles it.

``transform`` is an ``async def`` handler that does its file work in a thread; ``profile`` is a
plain ``def`` handler, which orch_serv runs in its thread pool. Run the service on its own with
``orch-serv service services_examples.transformer:service``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from orch_serv import HandlerContext, Service
from services_examples.models import (
    ColumnStats,
    CsvFile,
    DatasetProfile,
    TransformedFile,
)
from services_examples.validator import is_blank, read_csv

Record = dict[str, str | None]

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

service = Service("transformer")


def snake_case(name: str) -> str:
    """``"Start Time"``, ``"startTime"`` and ``" START-TIME "`` all become ``"start_time"``."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name.strip())
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[\W_]+", "_", text).strip("_").lower()


def normalise_header(header: Sequence[str]) -> list[str]:
    """snake_case every name; a name left empty becomes ``column_<n>`` and a name that
    collides with an earlier one gets a ``_2``, ``_3``... suffix."""
    names: list[str] = []
    for index, raw in enumerate(header, 1):
        base = snake_case(raw) or f"column_{index}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def normalise_table(
    header: Sequence[str], rows: Iterable[Sequence[str]]
) -> tuple[list[str], list[Record]]:
    """Normalise a table: snake_case header names, trim every value, turn empty values into
    ``None`` and drop the rows that are entirely empty. Pure function."""
    columns = normalise_header(header)
    records = [
        {name: (value.strip() or None) for name, value in zip(columns, row, strict=False)}
        for row in rows
        if not is_blank(list(row))
    ]
    return columns, records


def write_jsonl(records: Iterable[Record], path: Path) -> None:
    """Write one JSON object per line, atomically (a reader never sees a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(partial, path)


def output_path(workdir: str, dataset_id: str) -> Path:
    """Where ``transform`` writes a dataset: ``<workdir>/transformed/<dataset_id>.jsonl``."""
    return Path(workdir) / "transformed" / f"{dataset_id}.jsonl"


def column_stats(name: str, values: Sequence[str | None]) -> ColumnStats:
    """Non-empty and distinct counts of a column, with min/max when it is numeric."""
    present = [v for v in values if v is not None]
    numeric = bool(present) and all(_NUMBER.match(v) for v in present)
    numbers = [float(v) for v in present] if numeric else []
    return ColumnStats(
        name=name,
        non_empty=len(present),
        distinct=len(set(present)),
        numeric=numeric,
        min=min(numbers) if numbers else None,
        max=max(numbers) if numbers else None,
    )


def _transform(body: CsvFile) -> TransformedFile:
    table = read_csv(Path(body.path))
    columns, records = normalise_table(table.header, table.rows)
    target = output_path(body.workdir, body.dataset_id)
    write_jsonl(records, target)
    return TransformedFile(
        dataset_id=body.dataset_id,
        workdir=body.workdir,
        source_path=body.path,
        output_path=str(target),
        columns=columns,
        rows=len(records),
    )


@service.command("transform")
async def transform(body: CsvFile, ctx: HandlerContext) -> TransformedFile:
    """Normalise the CSV file of ``body`` into ``<workdir>/transformed/<dataset_id>.jsonl``.

    Writing the same output again is harmless, so a redelivered command is safe.
    """
    result = await asyncio.to_thread(_transform, body)
    await ctx.status(
        "transformed",
        lineage={"files_incoming": [result.source_path], "files_outgoing": [result.output_path]},
    )
    return result


@service.command("profile")
def profile(body: CsvFile, ctx: HandlerContext) -> DatasetProfile:
    """Per-column statistics of the CSV file of ``body`` (a synchronous handler)."""
    table = read_csv(Path(body.path))
    columns, records = normalise_table(table.header, table.rows)
    stats = [column_stats(name, [r.get(name) for r in records]) for name in columns]
    ctx.status_sync("profiled", lineage={"files_incoming": [body.path], "files_outgoing": []})
    return DatasetProfile(dataset_id=body.dataset_id, rows=len(records), columns=stats)
