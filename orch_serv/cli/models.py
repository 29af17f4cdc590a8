"""``orch-serv models``: status models (Statusek's objects) without application code:
``load FILE`` publishes the models of a YAML file, ``list`` and ``show NAME`` read them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orch_serv import render
from orch_serv.backends import open_store
from orch_serv.cli.app import app
from orch_serv.cli.common import EXIT_USAGE, Format, fail, out, run
from orch_serv.cli.common import settings as current_settings
from orch_serv.statusmodel.model import StatusModel
from orch_serv.statusmodel.published import PublishedModels
from orch_serv.statusmodel.yamlfile import StatusModelError, load_models

if TYPE_CHECKING:
    from orch_serv.store.redis import RedisRunStore

models = typer.Typer(help="Status models: statuses, their predecessors, instance timeouts.")
app.add_typer(models, name="models")
_FORMAT = typer.Option("--format", help="table or json.")


def model_json(model: StatusModel) -> dict[str, Any]:
    """A model as ``models show`` prints it."""
    return model.model_dump(mode="json")


async def _published() -> tuple[RedisRunStore, PublishedModels]:
    config = current_settings()
    store = await open_store(config)
    return store, PublishedModels(store.redis, config.key_prefix)


@models.command("load")
def models_load(
    file: Annotated[Path, typer.Argument(help="YAML file: a model, a list, or {models: [...]}")],
    check: Annotated[bool, typer.Option(help="Only check the file; publish nothing.")] = False,
) -> None:
    """Publish the status models of a YAML file (each becomes its name's current version)."""
    try:
        loaded = load_models(file)
    except StatusModelError as exc:
        raise fail(exc.message, EXIT_USAGE) from None

    async def main() -> None:
        store, published = await _published()
        try:
            await published.publish(loaded)
        finally:
            await store.close()

    if not check:
        run(main)
    verb = "checked" if check else "published"
    for model in loaded:
        out.print(f"{verb} {model.name!r} version {model.version}", highlight=False)


@models.command("list")
def models_list(fmt: Annotated[Format, _FORMAT] = Format.table) -> None:
    """The current status models (the built-in ``2-POINT LINE TASK`` included)."""

    async def main() -> list[StatusModel]:
        store, published = await _published()
        try:
            return await published.list()
        finally:
            await store.close()

    found = run(main)
    if fmt is Format.json:
        out.print_json(render.dumps([model_json(m) for m in found]))
        return
    for model in found:
        timeout = "none" if model.timeout_seconds is None else f"{model.timeout_seconds:g} s"
        names = ", ".join(f"{s.name} ({s.type.value})" for s in model.statuses)
        out.print(f"{model.name}  {model.version}  timeout {timeout}: {names}", highlight=False)


@models.command("show")
def models_show(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """One status model as JSON; exit 1 when there is none of that name."""

    async def main() -> StatusModel | None:
        store, published = await _published()
        try:
            return await published.get(name)
        finally:
            await store.close()

    model = run(main)
    if model is None:
        raise fail(f"no status model {name!r}")
    out.print_json(render.dumps(model_json(model)))


__all__ = ["models"]
