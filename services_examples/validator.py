"""The ``validator`` service: checks that a CSV file is well formed before it is ingested.

Run it on its own with ``orch-serv service services_examples.validator:service``.
"""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass
from pathlib import Path

from orch_serv import EventStatus, HandlerContext, NonRetryableError, Service
from services_examples.models import CsvFile, CsvReport

#: How many offending lines a validation error message quotes.
MAX_REPORTED = 3

service = Service("validator")


@dataclass(frozen=True, slots=True)
class CsvTable:
    """The content of a valid CSV file: its header and its non-empty data rows."""

    header: list[str]
    rows: list[list[str]]


def is_blank(row: list[str]) -> bool:
    """True for a row whose fields are all empty or whitespace (or a blank line)."""
    return all(not field.strip() for field in row)


def read_csv(path: Path) -> CsvTable:
    """Read ``path`` (UTF-8, comma-separated) and check that it is a usable table.

    The file must have a header with no empty (or duplicate) names and at least one data row,
    and every data row must have as many fields as the header. Blank rows are skipped.
    Raises :class:`~orch_serv.NonRetryableError` with a message naming the problem, since
    retrying cannot fix a bad file.
    """
    lines: list[tuple[int, list[str]]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                lines.extend((reader.line_num, row) for row in reader)
            except csv.Error as exc:
                raise NonRetryableError(
                    f"{path.name}: malformed CSV at line {reader.line_num}: {exc}"
                ) from exc
    except FileNotFoundError as exc:
        raise NonRetryableError(f"CSV file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise NonRetryableError(f"{path} is a directory, not a CSV file") from exc
    except UnicodeDecodeError as exc:
        raise NonRetryableError(f"{path.name} is not UTF-8 text: {exc.reason}") from exc

    if not lines or is_blank(lines[0][1]):
        raise NonRetryableError(f"{path.name} is empty: the first line must be a header")
    header = [name.strip() for name in lines[0][1]]
    unnamed = [str(i) for i, name in enumerate(header, 1) if not name]
    if unnamed:
        raise NonRetryableError(f"{path.name}: header column(s) {', '.join(unnamed)} have no name")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise NonRetryableError(f"{path.name}: duplicate column name(s) {', '.join(duplicates)}")

    data = [(line, row) for line, row in lines[1:] if not is_blank(row)]
    if not data:
        raise NonRetryableError(f"{path.name} has a header but no data rows")
    ragged = [(line, len(row)) for line, row in data if len(row) != len(header)]
    if ragged:
        quoted = ", ".join(f"line {line} has {n}" for line, n in ragged[:MAX_REPORTED])
        more = f" (and {len(ragged) - MAX_REPORTED} more)" if len(ragged) > MAX_REPORTED else ""
        raise NonRetryableError(
            f"{path.name}: {len(ragged)} row(s) do not have the {len(header)} fields of the "
            f"header: {quoted}{more}"
        )
    return CsvTable(header=header, rows=[row for _, row in data])


@service.command("validate_csv")
async def validate_csv(body: CsvFile, ctx: HandlerContext) -> CsvReport:
    """Check the CSV file of ``body`` and describe it (columns and row count).

    Records a ``validated`` status with the file as incoming lineage, or a FAILED
    ``validation_failed`` status before failing the step.
    """
    lineage = {"files_incoming": [body.path], "files_outgoing": []}
    try:
        table = await asyncio.to_thread(read_csv, Path(body.path))
    except NonRetryableError as exc:
        await ctx.status(
            "validation_failed", lineage=lineage, status=EventStatus.FAILED, message=exc.message
        )
        raise
    await ctx.status("validated", lineage=lineage)
    ctx.log.info("csv_validated", dataset_id=body.dataset_id, rows=len(table.rows))
    return CsvReport(**body.model_dump(), columns=table.header, rows=len(table.rows))
