"""The ``publisher`` service: content-addressed, idempotent publication of a dataset.

Written in orch_serv's original class style: a :class:`~orch_serv.CommandHandler` subclass
with a ``target_command`` and a ``process`` method, plus a post-processor, registered with
``Service(name, service_commands=ServiceBuilder(ServiceBlock(Handler, PostProcessor)))``.
Run it on its own with ``orch-serv service services_examples.publisher:service``.

The file goes to ``<workdir>/published/<dataset_id>/<sha256[:12]>.jsonl`` with a
``manifest.json`` beside it. Publishing the same content again copies nothing and returns the
same :class:`~services_examples.models.Publication` (including the first ``published_at``),
so redelivered commands and re-runs are harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orch_serv import (
    CommandHandler,
    CommandHandlerPostProcess,
    HandlerContext,
    NonRetryableError,
    Service,
    ServiceBlock,
    ServiceBuilder,
)
from services_examples.models import Publication, TransformedFile

MANIFEST = "manifest.json"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _atomic_write(path: Path, data: bytes, token: str) -> None:
    partial = path.with_name(f".{path.name}.{token}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def publish_file(body: TransformedFile, token: str) -> tuple[Publication, bool]:
    """Publish ``body.output_path``; returns the publication and whether anything was written.

    ``token`` (the command's message id) names the temporary files, so that two concurrent
    attempts never write into the same partial file.
    """
    source = Path(body.output_path)
    if not source.is_file():
        raise NonRetryableError(f"transformed file not found: {source}")
    digest = file_sha256(source)
    folder = Path(body.workdir) / "published" / body.dataset_id
    target = folder / f"{digest[:12]}.jsonl"
    manifest_path = folder / MANIFEST
    folder.mkdir(parents=True, exist_ok=True)
    safe_token = token.replace(":", "_")

    wrote = False
    if not (target.is_file() and file_sha256(target) == digest):
        partial = target.with_name(f".{target.name}.{safe_token}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)
        wrote = True

    manifest = _read_manifest(manifest_path)
    if manifest is None or manifest.get("sha256") != digest:
        manifest = {
            "dataset_id": body.dataset_id,
            "rows": body.rows,
            "sha256": digest,
            "file": target.name,
            "source": body.source_path,
            "transformed": body.output_path,
            "columns": body.columns,
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "provenance": body.provenance,
        }
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        _atomic_write(manifest_path, text.encode(), safe_token)
        wrote = True

    publication = Publication(
        dataset_id=body.dataset_id,
        rows=body.rows,
        sha256=digest,
        path=str(target),
        url=target.resolve().as_uri(),
        manifest_path=str(manifest_path),
        published_at=str(manifest["published_at"]),
    )
    return publication, wrote


class Publish(CommandHandler):
    """``publish``: copy the transformed file to its content-addressed place."""

    target_command = "publish"

    async def process(self, body: TransformedFile, ctx: HandlerContext) -> tuple[Publication, bool]:
        """Publish the file and record its lineage; the extra value (whether anything was
        written) goes to the post-processor only."""
        publication, wrote = await asyncio.to_thread(publish_file, body, ctx.message_id)
        await ctx.status(
            "published",
            lineage={
                "files_incoming": [body.output_path],
                "files_outgoing": [publication.path, publication.manifest_path],
            },
            message=None if wrote else "already published; nothing written",
        )
        return publication, wrote


class AnnouncePublication(CommandHandlerPostProcess):
    """Runs once the reply of ``publish`` is confirmed: logs the new dataset version."""

    def post_process(self, result: Any, extra: Any, ctx: Any) -> None:
        """Log the publication (``extra`` is True when files were written)."""
        ctx.log.info("dataset_published", url=result["url"], written=bool(extra))


service = Service(
    "publisher", service_commands=ServiceBuilder(ServiceBlock(Publish, AnnouncePublication))
)
