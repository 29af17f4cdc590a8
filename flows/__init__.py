"""Flow definitions of the example dataset-ingestion pipeline (see :mod:`flows.ingest`)."""
