"""`collectionflow db ...`: migrate the configured database and read what it holds."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.migrate import new_revision, upgrade_sync
from collectionflow.db.queries import FlowRow
from collectionflow.db.repository import FlowRepository
from collectionflow.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Database schema and records.")


@app.command()
def upgrade() -> None:
    """Apply the migrations to the configured database (COLLECTIONFLOW_DB__URL)."""
    url = get_settings().db.resolved_url()
    upgrade_sync(url)
    Console().print(f"schema is up to date: {make_url(url).render_as_string(hide_password=True)}")


@app.command()
def revision(
    message: Annotated[str, typer.Option("--message", "-m", help="what the migration does")],
) -> None:
    """Autogenerate a migration from the models and the (migrated) configured database."""
    new_revision(get_settings().db.resolved_url(), message)


@app.command()
def flows(
    limit: Annotated[int, typer.Option(min=1, help="at most this many flows, newest first")] = 50,
    output: Annotated[str, typer.Option("--output", "-o", help="table, json or yaml")] = "table",
) -> None:
    """Print the newest flows the database holds, with their master flow and progress (the
    failure journal: `collectionflow journal`)."""
    rows = asyncio.run(_flow_rows(limit))
    if output in ("json", "yaml"):
        data = [
            {
                "namespace": row.ref.namespace,
                "name": row.ref.name,
                "uid": row.ref.flow_uid,
                "status": row.snapshot.status,
                "phase": row.snapshot.current_phase,
                "progressPercentage": row.snapshot.progress_percentage,
                "masterFlowId": row.ids.master_flow_id,
                "childFlowId": row.ids.child_flow_id,
            }
            for row in rows
        ]
        text = json.dumps(data, indent=2) if output == "json" else yaml.safe_dump(data)
        typer.echo(text.rstrip("\n"))
        return
    if output != "table":
        raise typer.BadParameter(f"{output!r}: table, json or yaml", param_hint="--output")
    table = Table("namespace/name", "status", "phase", "progress", "master flow id")
    for row in rows:
        table.add_row(
            f"{row.ref.namespace}/{row.ref.name}",
            row.snapshot.status,
            row.snapshot.current_phase or "",
            f"{row.snapshot.progress_percentage:g}%",
            row.ids.master_flow_id,
        )
    Console().print(table)


async def _flow_rows(limit: int) -> list[FlowRow]:
    engine = make_engine(get_settings().db)
    try:
        return await FlowRepository(make_sessionmaker(engine)).list_flows(limit)
    finally:
        await engine.dispose()
