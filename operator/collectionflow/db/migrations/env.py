"""Alembic environment, driven only by `collectionflow.db.migrate` (there is no alembic.ini).

`upgrade` hands in an open connection of an async engine (`attributes["connection"]`); other
commands, such as autogenerating a revision, get the URL (`attributes["url"]`) and run on an
async engine of their own.
"""

from __future__ import annotations

import asyncio

from alembic import context
from pydantic import SecretStr
from sqlalchemy.engine import Connection

from collectionflow.db.engine import make_engine
from collectionflow.db.models import Base
from collectionflow.settings import DatabaseSettings


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_on_new_engine(url: str) -> None:
    engine = make_engine(DatabaseSettings(url=SecretStr(url)))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


shared_connection: Connection | None = context.config.attributes.get("connection")
if shared_connection is None:
    asyncio.run(run_migrations_on_new_engine(context.config.attributes["url"]))
else:
    run_migrations(shared_connection)
