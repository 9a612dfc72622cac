"""Database fixtures: a fresh database per test module, on the session's PostgreSQL.

`db_url` runs a module's tests on SQLite and on PostgreSQL. Each module gets empty databases of
its own, so modules never see each other's rows; tests within a module share them and use
their own flow uids.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.migrate import upgrade
from collectionflow.db.repository import FlowRepository
from collectionflow.settings import DatabaseSettings
from harness.postgres import PostgresServer

_database_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def pg_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    module = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.rsplit(".", 1)[-1].lower())
    return postgres_server.create_database(f"t{next(_database_numbers)}_{module}"[:63])


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'collectionflow.sqlite'}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    return url


@pytest.fixture(scope="module")
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the module's migrated database."""
    await upgrade(db_url)
    engine = make_engine(DatabaseSettings(url=SecretStr(db_url)))
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def repository(sessions: async_sessionmaker[AsyncSession]) -> FlowRepository:
    return FlowRepository(sessions)
