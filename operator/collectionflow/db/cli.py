"""`collectionflow db ...`: migrate the configured database and read what it holds."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.migrate import new_revision, upgrade_sync
from collectionflow.db.queries import FlowRow, JournalRow
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
def journal(
    flow_uid: Annotated[str | None, typer.Option(help="only this flow's entries")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many entries")] = 50,
) -> None:
    """Print the newest failure-journal entries."""
    rows = asyncio.run(_journal_rows(flow_uid, limit))
    table = Table("time", "flow uid", "source", "operation", "phase", "next", "error")
    for row in rows:
        entry = row.entry
        table.add_row(
            row.created_at.isoformat(timespec="seconds"),
            entry.flow_uid or "",
            entry.source,
            entry.operation,
            entry.phase or "",
            entry.next_phase or "",
            entry.error_message or "",
        )
    Console().print(table)


@app.command()
def flows(
    limit: Annotated[int, typer.Option(min=1, help="at most this many flows, newest first")] = 50,
) -> None:
    """Print the newest flows the database holds, with their master flow and progress."""
    rows = asyncio.run(_flow_rows(limit))
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


async def _journal_rows(flow_uid: str | None, limit: int) -> list[JournalRow]:
    engine = make_engine(get_settings().db)
    try:
        return await FlowRepository(make_sessionmaker(engine)).journal_entries(flow_uid, limit)
    finally:
        await engine.dispose()


async def _flow_rows(limit: int) -> list[FlowRow]:
    engine = make_engine(get_settings().db)
    try:
        return await FlowRepository(make_sessionmaker(engine)).list_flows(limit)
    finally:
        await engine.dispose()
