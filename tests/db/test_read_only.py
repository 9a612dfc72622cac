"""The web view's database engine is read-only in the database itself: a read works, and any
write fails there, on SQLite and on PostgreSQL, whatever the credentials allow."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError

from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.db.queries import FlowQueries
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import FlowRef
from collectionflow.settings import DatabaseSettings

pytestmark = pytest.mark.db


async def test_the_read_only_engine_reads_and_cannot_write(
    db_url: str, repository: FlowRepository
) -> None:
    settings = DatabaseSettings(url=SecretStr(db_url))
    writer_engine, reader_engine = make_engine(settings), make_engine(settings, read_only=True)
    try:
        writer = repository
        uid = str(uuid.uuid4())
        await writer.ensure_flow(FlowRef(uid, "flows", f"flow-{uid[:8]}", "collection"))
        reader = FlowQueries(make_sessionmaker(reader_engine))
        assert await reader.child_snapshot(uid) is not None
        # SQLite's refusal is an OperationalError, which the repository reports as unavailable.
        with pytest.raises((DBAPIError, DatabaseUnavailable), match=r"read-?only"):
            await FlowRepository(make_sessionmaker(reader_engine)).ensure_flow(
                FlowRef(str(uuid.uuid4()), "flows", "another", "collection")
            )
    finally:
        await writer_engine.dispose()
        await reader_engine.dispose()
