"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import SecretStr
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from collectionflow.db.engine import make_engine
from collectionflow.db.migrate import upgrade
from collectionflow.db.models import Base
from collectionflow.settings import DatabaseSettings

pytestmark = pytest.mark.db


def _schema_difference(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables_and_revision(connection: Connection) -> tuple[set[str], str | None]:
    tables = set(inspect(connection).get_table_names())
    return tables, MigrationContext.configure(connection).get_current_revision()


async def test_upgrade_matches_the_models(db_url: str) -> None:
    engine = make_engine(DatabaseSettings(url=SecretStr(db_url)))
    try:
        await upgrade(db_url)
        await upgrade(db_url)
        async with engine.connect() as connection:
            tables, revision = await connection.run_sync(_tables_and_revision)
            difference = await connection.run_sync(_schema_difference)
    finally:
        await engine.dispose()

    assert tables == {
        "alembic_version",
        "master_flows",
        "collection_flows",
        "phase_runs",
        "failure_journal",
    }
    assert revision == "0001"
    assert difference == []


async def test_replicas_starting_together_migrate_one_at_a_time(pg_url: str) -> None:
    """Two replicas of an HA install migrate a fresh database at once: neither fails."""
    fresh = pg_url.rsplit("/", 1)[0] + "/" + pg_url.rsplit("/", 1)[1] + "_together"
    server_url = pg_url.rsplit("/", 1)[0] + "/postgres"
    admin = make_engine(DatabaseSettings(url=SecretStr(server_url)))
    try:
        async with admin.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(f'CREATE DATABASE "{fresh.rsplit("/", 1)[1]}"'))
    finally:
        await admin.dispose()

    await asyncio.gather(*(upgrade(fresh) for _ in range(4)))

    engine = make_engine(DatabaseSettings(url=SecretStr(fresh)))
    try:
        async with engine.connect() as connection:
            _, revision = await connection.run_sync(_tables_and_revision)
    finally:
        await engine.dispose()
    assert revision == "0001"
