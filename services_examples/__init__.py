"""Example services of a small dataset-ingestion pipeline built on orch_serv.

* :mod:`services_examples.validator` - ``validate_csv``: checks a CSV file is well formed.
* :mod:`services_examples.transformer` - ``transform`` (CSV -> JSON Lines) and ``profile``
  (per-column statistics).
* :mod:`services_examples.publisher` - ``publish``: content-addressed, idempotent publication
  with a ``manifest.json`` (a class-style handler, orch_serv's original style).

Each module defines a module-level ``service``, so it runs on its own with
``orch-serv service services_examples.validator:service``. The flows that chain them are in
:mod:`flows.ingest`; ``python -m services_examples.demo`` runs everything in one process.
"""

from pathlib import Path

#: The sample CSV files the demo and the tests use.
DATA_DIR = Path(__file__).parent / "data"

__all__ = ["DATA_DIR"]
