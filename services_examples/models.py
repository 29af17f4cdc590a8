"""Message bodies exchanged by the example services (pydantic models).

Each step returns a model that the next step's handler accepts: fields a handler does not
declare are ignored (pydantic's default), so a step's output may carry more than its
successor needs.

    validate_csv: CsvFile -> CsvReport
    transform:    CsvReport -> TransformedFile
    publish:      TransformedFile -> Publication
    profile:      CsvReport -> DatasetProfile
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

#: A dataset id is used in file names: no path separators, no leading dot.
DatasetId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$",
        description="Dataset identifier, safe to use as a file name, e.g. 'city-bike-trips'.",
    ),
]


class CsvFile(BaseModel):
    """A CSV file to ingest: the input of ``validate_csv``."""

    dataset_id: DatasetId
    path: str = Field(description="Path of the CSV file.")
    workdir: str = Field(description="Directory the pipeline writes its outputs under.")


class CsvReport(CsvFile):
    """A CSV file that passed validation: the output of ``validate_csv``."""

    columns: list[str] = Field(description="Header names, as found in the file.")
    rows: int = Field(ge=1, description="Number of non-empty data rows.")


class TransformedFile(BaseModel):
    """A dataset normalised to JSON Lines: the output of ``transform``."""

    dataset_id: DatasetId
    workdir: str
    source_path: str = Field(description="The CSV file the data came from.")
    output_path: str = Field(description="The JSON Lines file written.")
    columns: list[str] = Field(description="Normalised (snake_case) column names.")
    rows: int = Field(ge=0, description="Number of records written.")
    provenance: dict[str, str] | None = Field(
        None, description="Where the data went through (added by the ingest flow's post hook)."
    )


class Publication(BaseModel):
    """A published dataset version: the output of ``publish``."""

    dataset_id: DatasetId
    rows: int
    sha256: str = Field(description="SHA-256 of the published file (hex).")
    path: str = Field(description="Path of the published file.")
    url: str = Field(description="file:// URL of the published file.")
    manifest_path: str = Field(description="Path of the manifest.json beside it.")
    published_at: str = Field(description="When this version was first published (ISO 8601).")


class ColumnStats(BaseModel):
    """Statistics of one column (computed on trimmed values)."""

    name: str = Field(description="Normalised column name.")
    non_empty: int = Field(description="Number of non-empty values.")
    distinct: int = Field(description="Number of distinct non-empty values.")
    numeric: bool = Field(description="True when every non-empty value is a number.")
    min: float | None = Field(None, description="Smallest value, for numeric columns.")
    max: float | None = Field(None, description="Largest value, for numeric columns.")


class DatasetProfile(BaseModel):
    """Per-column statistics of a dataset: the output of ``profile``."""

    dataset_id: DatasetId
    rows: int
    columns: list[ColumnStats]
