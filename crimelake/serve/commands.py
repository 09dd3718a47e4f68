"""`crimelake serve` and `crimelake access`: run the map and manage who may see what."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from crimelake.cli_common import HomeOpt, _settings, console, err
from crimelake.serve.access import ROLES, AccessError, add_key, keys_file, list_keys, revoke_key

access_app = typer.Typer(help="API keys for the map: analyst, auditor and admin access.", no_args_is_help=True)


def serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the map and its API.")] = 8080,
) -> None:
    """Serve the crime map and its API over this home's lake (newest table versions, refreshed as data lands)."""
    from crimelake import lake
    from crimelake.serve.app import create_app

    settings = _settings(home)
    # The app reads the tables on its first request; here it is enough to know they are there.
    if not lake.table_exists(settings.gold("fct_cell_month_counts")):
        err.print(f"[red]no gold tables under {settings.lake}[/red]: run `crimelake demo` (or the pipeline) first")
        raise typer.Exit(1)
    try:
        app = create_app(settings)
        keys = list_keys(settings)
    except (AccessError, ValueError) as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    import uvicorn

    console.print(f"crimelake map for {settings.home} at [bold]http://{host}:{port}/[/bold] "
                  f"(API docs at /docs; Ctrl-C to stop)")
    if keys:
        console.print(f"{len(keys)} API key(s) from {keys_file(settings)}; without a key the page shows the "
                      "public view")
    else:
        console.print("No API keys yet: the page shows the public view. For street-level detail run "
                      "`crimelake access add NAME --role analyst --force <force-slug>`.")
    uvicorn.run(app, host=host, port=port, log_level="info")


@access_app.command("add")
def access_add(
    name: Annotated[str, typer.Argument(help="Who the key is for, e.g. beds-analyst-1.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES[1:])}.")],
    force: Annotated[str | None, typer.Option(help="An analyst's force (data.police.uk slug).")] = None,
    home: HomeOpt = None,
) -> None:
    """Create a key; it is printed once and only its SHA-256 digest is stored."""
    settings = _settings(home)
    try:
        key = add_key(settings, name, role, force)
    except AccessError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    err.print(f"Key for {name} ({role}{', ' + force if force else ''}) stored in {keys_file(settings)}. "
              "It is shown once; keep it safe:")
    console.print(key)


@access_app.command("list")
def access_list(home: HomeOpt = None) -> None:
    """List the keys (names, roles, forces; never the keys)."""
    settings = _settings(home)
    table = Table("name", "role", "force", "created", "from", title=f"API keys ({keys_file(settings)})")
    try:
        entries = list_keys(settings)
    except AccessError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    for e in entries:
        table.add_row(e.name, e.role, e.force or "", e.created_at or "", e.origin)
    console.print(table)


@access_app.command("revoke")
def access_revoke(name: Annotated[str, typer.Argument(help="The key's name.")], home: HomeOpt = None) -> None:
    """Remove a key from the keys file; a running server stops accepting it at its next request."""
    settings = _settings(home)
    try:
        revoke_key(settings, name)
    except AccessError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    console.print(f"revoked {name}")
