"""Blocks and flows of the dataset-ingestion pipeline, and the orchestrator that runs them.

* ``ingest``: validate_csv -> transform -> publish
* ``profile``: validate_csv -> profile

``orch-serv orchestrator flows.ingest:orchestrator`` serves the flows,
``orch-serv dev flows.ingest:orchestrator`` also hosts the three services in the same process.
flows/ingest.yaml declares the same flows in YAML (same versions: ``orch-serv dev
flows/ingest.yaml``).
A run starts with a :class:`~services_examples.models.CsvFile` body::

    run_id = await running.start("ingest", {"dataset_id": "loans", "path": "...", "workdir": "..."})
"""

from __future__ import annotations

from flows.hooks import add_provenance
from orch_serv import Block, Flow, FlowBlock, FlowBuilder, Orchestrator
from services_examples import publisher, transformer, validator


class ValidateCsv(Block):
    """Check the CSV file (validator service)."""

    name_block = "validate_csv"
    service = "validator"
    command = "validate_csv"


class Transform(Block):
    """Normalise the CSV file to JSON Lines (transformer service)."""

    name_block = "transform"
    service = "transformer"
    command = "transform"


class Profile(Block):
    """Per-column statistics of the CSV file (transformer service)."""

    name_block = "profile"
    service = "transformer"
    command = "profile"


class Publish(Block):
    """Publish the JSON Lines file with a manifest (publisher service)."""

    name_block = "publish"
    service = "publisher"
    command = "publish"


class IngestFlow(Flow):
    """validate_csv -> transform -> publish, recording the run's provenance in the manifest."""

    name_flow = "ingest"
    steps_flow = FlowBuilder(
        FlowBlock(ValidateCsv),
        FlowBlock(Transform, post_handler_function=add_provenance),
        FlowBlock(Publish),
    )


class ProfileFlow(Flow):
    """validate_csv -> profile."""

    name_flow = "profile"
    steps_flow = FlowBuilder(FlowBlock(ValidateCsv), FlowBlock(Profile))


orchestrator = Orchestrator(
    flows=[IngestFlow, ProfileFlow],
    blocks=[ValidateCsv, Transform, Profile, Publish],
    default_flow="ingest",
    services=[validator.service, transformer.service, publisher.service],
)
