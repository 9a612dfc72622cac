"""What `collectionflow describe` and `journal` print: a flow's timeline, conditions, Events
and failure journal, each as a table within the terminal's width."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import textwrap
from typing import Any

import typer

from collectionflow.cli.tables import Column, age, render, width
from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.db.queries import FlowQueries, JournalRow
from collectionflow.settings import get_settings


def describe_text(
    flow: dict[str, Any],
    status: dict[str, Any],
    events: list[dict[str, Any]],
    journal: list[JournalRow] | str,
) -> str:
    meta = flow["metadata"]
    lines = [
        f"Name:       {meta['name']}",
        f"Namespace:  {meta['namespace']}",
        f"State:      {status.get('state', 'Pending')}",
        f"Phase:      {status.get('phase') or '-'} (next: {status.get('nextPhase') or '-'})",
        f"Progress:   {status.get('progressPercentage', 0)}% ({status.get('progress') or '-'})",
        f"Attempt:    {status.get('attempt', 0)}   Recoveries: {status.get('recoveries', 0)}",
        textwrap.fill(
            status.get("message") or "",
            width(),
            initial_indent="Message:    ",
            subsequent_indent=" " * 12,
        ),
        "",
        "Phases:",
    ]
    history = status.get("phaseHistory") or []
    rows = [
        [
            h["name"],
            str(h.get("attempt", "")),
            h.get("state", ""),
            duration(h),
            h.get("message") or "",
        ]
        for h in history
    ]
    columns = [
        Column("PHASE"),
        Column("ATTEMPT"),
        Column("STATE"),
        Column("DURATION"),
        Column("MESSAGE", wraps=True),
    ]
    lines.append(indent(render(columns, rows, width() - 2)) if rows else "  (none yet)")
    lines += ["", "Conditions:"]
    conditions = [
        [c["type"], c["status"], c.get("reason", ""), c.get("message", "")]
        for c in status.get("conditions") or []
    ]
    columns = [Column("TYPE"), Column("STATUS"), Column("REASON"), Column("MESSAGE", wraps=True)]
    lines.append(indent(render(columns, conditions, width() - 2)) if conditions else "  (none)")
    lines += ["", "Events:"]
    recent = sorted(events, key=lambda e: str(e.get("lastTimestamp") or ""))[-10:]
    event_rows = [
        [e.get("type", ""), e.get("reason", ""), age(e.get("lastTimestamp")), e.get("message", "")]
        for e in recent
    ]
    columns = [Column("TYPE"), Column("REASON"), Column("AGE"), Column("MESSAGE", wraps=True)]
    lines.append(indent(render(columns, event_rows, width() - 2)) if event_rows else "  (none)")
    lines += ["", "Failure journal:"]
    lines.append(indent(journal_table(journal, width() - 2)))
    return "\n".join(lines)


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def duration(entry: dict[str, Any]) -> str:
    started, finished = entry.get("startedAt"), entry.get("finishedAt")
    if not started or not finished:
        return "-"
    seconds = (
        dt.datetime.fromisoformat(finished.replace("Z", "+00:00"))
        - dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    ).total_seconds()
    return f"{seconds:.1f}s"


def read_journal(
    uid: str | None, since: dt.timedelta | None, limit: int = 100
) -> list[JournalRow] | str:
    """The journal rows (of one flow), newest first; a sentence when the database is out."""

    async def query() -> list[JournalRow]:
        engine = make_engine(get_settings().db)
        try:
            return await FlowQueries(make_sessionmaker(engine)).journal_entries(uid, limit)
        finally:
            await engine.dispose()

    try:
        rows = asyncio.run(query())
    except (DatabaseUnavailable, Exception) as error:
        return f"database unavailable (COLLECTIONFLOW_DB__URL): {error}"
    if since is not None:
        cutoff = dt.datetime.now(dt.UTC) - since
        rows = [row for row in rows if row.created_at >= cutoff]
    return rows


def journal_data(row: JournalRow) -> dict[str, Any]:
    entry = row.entry
    return {
        "time": row.created_at.isoformat(),
        "flowUid": entry.flow_uid,
        "operation": entry.operation,
        "phase": entry.phase,
        "nextPhase": entry.next_phase,
        "error": entry.error_message,
    }


def journal_table(journal: list[JournalRow] | str, room: int) -> str:
    if isinstance(journal, str):
        return journal
    if not journal:
        return "(no failures recorded)"
    rows = [
        [
            row.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.entry.operation,
            row.entry.phase or "",
            row.entry.error_message or "",
        ]
        for row in journal
    ]
    columns = [Column("TIME"), Column("OPERATION"), Column("PHASE"), Column("ERROR", wraps=True)]
    return render(columns, rows, room)


def parse_since(value: str | None) -> dt.timedelta | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)([smhd])", value)
    if not match:
        raise typer.BadParameter("a duration like 30s, 15m, 2h or 7d", param_hint="--since")
    size = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return dt.timedelta(seconds=int(match.group(1)) * size)
