"""Errors of the database layer, and the one place that decides what "unavailable" means.

`DatabaseUnavailable` is worth retrying with backoff (the database is down, restarting or
unreachable); the other errors are about the data and retrying will not help.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from sqlalchemy import exc as sa_exc

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
)


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; try again later."""


class UnknownMasterFlow(LookupError):
    """A flow names a master flow id that is not in the database."""

    def __init__(self, master_flow_id: str) -> None:
        super().__init__(f"master flow {master_flow_id!r} does not exist")
        self.master_flow_id = master_flow_id


class UnknownFlow(LookupError):
    """No child-flow record exists for this Kubernetes uid (ensure_flow was never called)."""

    def __init__(self, flow_uid: str) -> None:
        super().__init__(f"no flow with uid {flow_uid!r} in the database")
        self.flow_uid = flow_uid


def is_connection_failure(error: BaseException) -> bool:
    """Whether `error`, or anything it wraps, says the database connection failed."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _CONNECTION_ERRORS):
            return True
        if isinstance(current, sa_exc.DBAPIError):
            if current.connection_invalidated:
                return True
            pending.append(current.orig)
        pending.append(current.__cause__)
    return False


@contextmanager
def unavailable_on_connection_failure() -> Iterator[None]:
    """Re-raise connection-level failures inside the block as `DatabaseUnavailable`."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except Exception as error:
        if is_connection_failure(error):
            raise DatabaseUnavailable(f"database unavailable: {error}") from error
        raise
