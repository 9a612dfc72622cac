"""What the operator wrote to its database, read the way the operator's own queries read it
(`collectionflow.db.queries.FlowQueries`)."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.queries import FlowQueries
from collectionflow.domain.records import JournalEntry
from collectionflow.settings import DatabaseSettings


def journal_rows(url: str, uid: str) -> list[JournalEntry]:
    """The flow's failure-journal entries, oldest first."""

    async def read() -> list[JournalEntry]:
        engine = make_engine(DatabaseSettings(url=SecretStr(url)))
        try:
            rows = await FlowQueries(make_sessionmaker(engine)).journal_entries(uid, limit=1000)
        finally:
            await engine.dispose()
        return [row.entry for row in reversed(rows)]

    return asyncio.run(read())
