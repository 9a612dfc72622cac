"""A stopped PostgreSQL surfaces as DatabaseUnavailable, and the repository recovers on restart.

This module runs its own server: stopping the session's server would break other modules.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError, IntegrityError

from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.errors import DatabaseUnavailable, is_connection_failure
from collectionflow.db.migrate import upgrade
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import FlowRef, JournalEntry
from collectionflow.settings import DatabaseSettings
from harness.postgres import PostgresServer

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
async def own_repository(own_server: PostgresServer) -> AsyncIterator[FlowRepository]:
    url = own_server.create_database("unavailable")
    await upgrade(url)
    engine = make_engine(DatabaseSettings(url=SecretStr(url)))
    try:
        yield FlowRepository(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def new_ref() -> FlowRef:
    uid = str(uuid.uuid4())
    return FlowRef(uid, "flows", f"flow-{uid[:8]}", "collection")


async def test_stopped_server_raises_database_unavailable_then_recovers(
    own_server: PostgresServer, own_repository: FlowRepository
) -> None:
    before = new_ref()
    await own_repository.ensure_flow(before)

    await asyncio.to_thread(own_server.halt)
    try:
        with pytest.raises(DatabaseUnavailable):
            await own_repository.ensure_flow(new_ref())
        with pytest.raises(DatabaseUnavailable):
            await own_repository.journal(
                JournalEntry(source="test", operation="down", dedupe_key=str(uuid.uuid4()))
            )
    finally:
        await asyncio.to_thread(own_server.start)

    after = new_ref()
    ids = await own_repository.ensure_flow(after)
    flows = {row.ref.flow_uid: row.ids for row in await own_repository.list_flows()}
    assert flows[after.flow_uid] == ids
    assert before.flow_uid in flows


async def test_unreachable_url_raises_database_unavailable() -> None:
    with PostgresServer() as server:
        url = server.create_database("gone")
    with pytest.raises(DatabaseUnavailable):
        await upgrade(url)


async def test_unopenable_sqlite_file_raises_database_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable):
        await upgrade(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'flows.sqlite'}")


def test_data_errors_are_not_unavailability() -> None:
    integrity = IntegrityError("INSERT ...", {}, Exception("duplicate key"))
    invalidated = DBAPIError("SELECT 1", {}, Exception("closed"), connection_invalidated=True)

    assert not is_connection_failure(integrity)
    assert not is_connection_failure(ValueError("bad"))
    assert is_connection_failure(invalidated)
