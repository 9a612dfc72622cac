"""The engine and session factory, built once at startup and disposed of at cleanup.

SQLite gets foreign keys (off by default), WAL (readers do not block the writer) and a busy
timeout (a writer waits for the lock instead of failing at once) on every connection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from collectionflow.settings import DatabaseSettings

SQLITE_BUSY_TIMEOUT_MS = 10_000


def make_engine(settings: DatabaseSettings, read_only: bool = False) -> AsyncEngine:
    """The engine; `read_only` (the web view) makes every transaction read-only in the
    database itself: PostgreSQL refuses any write in it, whatever the role may do."""
    url = make_url(settings.resolved_url())
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, echo=settings.echo)
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        if read_only:
            event.listen(engine.sync_engine, "connect", _sqlite_read_only)
        return engine
    server_settings = {"default_transaction_read_only": "on"} if read_only else {}
    return create_async_engine(
        url,
        connect_args={"server_settings": server_settings} if server_settings else {},
        echo=settings.echo,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout_seconds,
        pool_recycle=settings.pool_recycle_seconds,
        pool_pre_ping=settings.pool_pre_ping,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _sqlite_read_only(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def _configure_sqlite_connection(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
