"""Run the Alembic migrations from code: the configuration is built here, not read from an
alembic.ini, and the scripts ship inside the package, so an installed wheel can migrate."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Connection

from collectionflow.db.engine import make_engine
from collectionflow.db.errors import unavailable_on_connection_failure
from collectionflow.settings import DatabaseSettings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Replicas starting together migrate one at a time: the others wait on this advisory lock
# (held for the migration's transaction) and then find the schema up to date.
MIGRATION_LOCK = 0x636F6C6C  # "coll"


def alembic_config(url: str) -> Config:
    """Configuration for any Alembic command against `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` to `revision`; raises DatabaseUnavailable if unreachable."""
    engine = make_engine(DatabaseSettings(url=SecretStr(url)))
    try:
        with unavailable_on_connection_failure():
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade, alembic_config(url), revision)
    finally:
        await engine.dispose()


def upgrade_sync(url: str, revision: str = "head") -> None:
    """`upgrade` for callers without a running event loop."""
    asyncio.run(upgrade(url, revision))


def new_revision(url: str, message: str) -> None:
    """Autogenerate a migration script from the difference between models and `url`."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
