"""``orch-serv api`` (the HTTP server) and ``orch-serv token create|list|revoke``."""

from __future__ import annotations

from typing import Annotated

import typer

from orch_serv import render
from orch_serv.backends import open_store
from orch_serv.cli.app import app
from orch_serv.cli.common import EXIT_FAILED, EXIT_USAGE, Format, err, fail, out, run, settings

token_app = typer.Typer(
    name="token",
    help="API tokens (bearer secrets with scopes; stored hashed in Redis).",
    no_args_is_help=True,
)
app.add_typer(token_app)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Listen address (api_host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (api_port).")] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve every endpoint without a token. Local development only.",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (native /v1, /statusek, /status-api, /stateservice, the /ui
    dashboard) until SIGTERM/SIGINT."""
    from orch_serv.api.app import create_app
    from orch_serv.api.server import serve

    config = settings()
    bind_host = host or config.api_host
    bind_port = config.api_port if port is None else port
    if insecure_no_auth:
        err.print(
            "orch-serv api: WARNING: --insecure-no-auth: AUTHENTICATION IS OFF. Anyone who "
            "reaches this port can start, cancel and read every run.",
            highlight=False,
        )
    err.print(f"orch-serv api: listening on http://{bind_host}:{bind_port}", highlight=False)
    run(lambda: serve(create_app(config, auth=not insecure_no_auth), bind_host, bind_port))


_SCOPES = typer.Option("--scope", "-s", help="read, start, operate or admin (repeat for several).")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what the token is for.")],
    scope: Annotated[list[str], _SCOPES],
) -> None:
    """Create a token and print it once (it is stored only as a hash)."""
    from orch_serv.api.tokens import Scope, TokenStore

    try:
        scopes = {Scope(s.strip().lower()) for s in scope}
    except ValueError:
        raise fail(
            f"unknown scope in {scope}; known: {', '.join(s.value for s in Scope)}", EXIT_USAGE
        ) from None

    async def main() -> None:
        config = settings()
        store = await open_store(config)
        try:
            try:
                secret, info = await TokenStore(store.redis, config.key_prefix).create(name, scopes)
            except ValueError as exc:
                raise fail(str(exc), EXIT_USAGE) from None
        finally:
            await store.close()
        err.print(
            f"token {info.id} ({', '.join(sorted(info.public()['scopes']))}) created; it is "
            "shown only now:",
            highlight=False,
        )
        out.print(secret, highlight=False)

    run(main)


@token_app.command("list")
def token_list(
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """List tokens (ids, names, scopes; never the secrets)."""
    from orch_serv.api.tokens import TokenStore

    async def main() -> None:
        config = settings()
        store = await open_store(config)
        try:
            infos = await TokenStore(store.redis, config.key_prefix).list()
        finally:
            await store.close()
        rows = [i.public() for i in infos]
        if fmt is Format.json:
            out.print_json(render.dumps(rows))
            return
        if not rows:
            out.print("no tokens", highlight=False)
        for row in rows:
            out.print(f"{row['id']}  {row['name']}  {','.join(row['scopes'])}", highlight=False)

    run(main)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    from orch_serv.api.tokens import TokenStore

    async def main() -> None:
        config = settings()
        store = await open_store(config)
        try:
            removed = await TokenStore(store.redis, config.key_prefix).revoke(token_id)
        finally:
            await store.close()
        if not removed:
            raise fail(f"no token with id {token_id!r}", EXIT_FAILED)
        out.print(f"token {token_id} revoked", highlight=False)

    run(main)
