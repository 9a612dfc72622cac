"""Every database read and write the operator makes, each in a fresh session of its own.

Handlers run concurrently and retry after crashes, so no session is shared between tasks and
every write is idempotent: rows are keyed by the flow's Kubernetes uid, by (flow, phase,
attempt) or by the journal's dedupe key, and written with INSERT ... ON CONFLICT, which holds
under concurrent writers on both PostgreSQL and SQLite. Connection failures surface as
`DatabaseUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    func,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.errors import (
    UnknownFlow,
    UnknownMasterFlow,
    unavailable_on_connection_failure,
)
from collectionflow.db.models import (
    Base,
    CollectionFlow,
    FailureJournal,
    MasterFlow,
    PhaseRun,
    table_of,
    utc_now,
)
from collectionflow.db.queries import FlowQueries, as_utc, journal_columns
from collectionflow.domain.records import (
    ChildSnapshot,
    ChildStatus,
    ExistingMaster,
    FlowIds,
    FlowRef,
    JournalEntry,
    MasterFlowUpdate,
    MasterLink,
    NewMaster,
    PhaseRunRecord,
    RunRowState,
    Transition,
)

_FINISHED_STATES = [state.value for state in RunRowState if state.finished]
_MASTER_IDS = uuid.UUID("6f1d1d0e-5f43-4a53-9d0e-8a7c1b9e2c11")
_CHILD_IDS = uuid.UUID("0b7e1c55-2f0a-4d8e-b1a4-3c9f6d2e7a90")
_OWN_MASTER = NewMaster()


class FlowRepository(FlowQueries):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        bind = sessions.kw.get("bind")
        # SQLite has one writer at a time, and a transaction that read before it writes fails
        # at once (SQLITE_BUSY, no busy wait) when another one committed meanwhile; so this
        # process's writes queue here instead. PostgreSQL takes them concurrently.
        self._write_lock = (
            asyncio.Lock() if bind is not None and bind.dialect.name == "sqlite" else None
        )

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on exit."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._sessions())
            await stack.enter_async_context(session.begin())
            yield session

    async def ensure_flow(self, ref: FlowRef, master: MasterLink = _OWN_MASTER) -> FlowIds:
        """The ids of the flow's master and child records, creating them on first call.

        The flow joins the `ExistingMaster`, or gets a master of its own (`NewMaster`). Ids
        derive from the uid, so concurrent first calls insert the same rows and all get the
        same answer.
        """
        with unavailable_on_connection_failure():
            async with self._writing() as session:
                existing = await _flow_ids(session, ref.flow_uid)
                if existing is not None:
                    return existing
                if isinstance(master, ExistingMaster):
                    master_id = master.master_flow_id
                    if await session.get(MasterFlow, master_id) is None:
                        raise UnknownMasterFlow(master_id)
                else:
                    master_id = str(uuid.uuid5(_MASTER_IDS, ref.flow_uid))
                    await session.execute(
                        _insert(_dialect(session), MasterFlow)
                        .values(
                            id=master_id,
                            flow_type=ref.flow_type,
                            status=ChildStatus.INITIALIZED.value,
                            client_account_id=master.client_account_id,
                            engagement_id=master.engagement_id,
                        )
                        .on_conflict_do_nothing(index_elements=[MasterFlow.id])
                    )
                await session.execute(
                    _insert(_dialect(session), CollectionFlow)
                    .values(
                        id=str(uuid.uuid5(_CHILD_IDS, ref.flow_uid)),
                        master_flow_id=master_id,
                        k8s_namespace=ref.namespace,
                        k8s_name=ref.name,
                        k8s_uid=ref.flow_uid,
                        flow_type=ref.flow_type,
                        status=ChildStatus.INITIALIZED.value,
                    )
                    .on_conflict_do_nothing(index_elements=[CollectionFlow.k8s_uid])
                )
                created = (await session.execute(_flow_ids_query(ref.flow_uid))).one()
        return FlowIds(master_flow_id=created[0], child_flow_id=created[1])

    async def record_transition(self, transition: Transition) -> bool:
        """Everything one phase transition writes, in one transaction: the finished run, the
        started run, the child's state and the master's. Returns whether the finished run was
        recorded now (False: it had been already, and stays as it was)."""
        if transition.finished is not None and not transition.finished.state.finished:
            raise ValueError(
                f"a finished run needs a finished state, not {transition.finished.state}"
            )
        recorded = False
        with unavailable_on_connection_failure():
            async with self._writing() as session:
                if transition.finished is not None:
                    recorded = await _record_run(
                        session, transition.finished, transition.child_flow_id
                    )
                if transition.started is not None:
                    await _record_run(session, transition.started, transition.child_flow_id)
                if transition.child is not None:
                    await _sync_child(session, transition.child[0], transition.child[1])
                if transition.master is not None:
                    await _update_master(session, transition.master)
        return recorded

    async def journal(self, entry: JournalEntry) -> bool:
        """Store the entry unless one with its dedupe key exists; True if it was stored."""
        with unavailable_on_connection_failure():
            async with self._writing() as session:
                inserted = await session.execute(
                    _insert(_dialect(session), FailureJournal)
                    .values(**journal_columns(entry))
                    .on_conflict_do_nothing(index_elements=[FailureJournal.dedupe_key])
                    .returning(FailureJournal.id)
                )
                return inserted.first() is not None

    async def mark_cancelled(self, flow_uid: str) -> bool:
        """Mark the flow and its unfinished phase runs cancelled; False if the flow is unknown.

        The first cancellation time is kept when called again.
        """
        now = utc_now()
        with unavailable_on_connection_failure():
            async with self._writing() as session:
                cancelled = await session.execute(
                    sql_update(CollectionFlow)
                    .where(CollectionFlow.k8s_uid == flow_uid)
                    .values(
                        status=ChildStatus.CANCELLED.value,
                        cancelled_at=func.coalesce(CollectionFlow.cancelled_at, now),
                    )
                    .returning(CollectionFlow.id)
                )
                flow_id = cancelled.scalar_one_or_none()
                if flow_id is None:
                    return False
                await session.execute(
                    sql_update(PhaseRun)
                    .where(PhaseRun.flow_id == flow_id, PhaseRun.state.not_in(_FINISHED_STATES))
                    .values(state=RunRowState.CANCELLED.value, finished_at=now)
                )
                return True


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _insert(dialect: str, into: type[Base] | Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT in `dialect`."""
    if dialect == "postgresql":
        return postgresql.insert(into)
    if dialect == "sqlite":
        return sqlite.insert(into)
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")


def _flow_ids_query(flow_uid: str) -> Select[str, str]:
    return select(CollectionFlow.master_flow_id, CollectionFlow.id).where(
        CollectionFlow.k8s_uid == flow_uid
    )


async def _flow_ids(session: AsyncSession, flow_uid: str) -> FlowIds | None:
    row = (await session.execute(_flow_ids_query(flow_uid))).first()
    return None if row is None else FlowIds(master_flow_id=row[0], child_flow_id=row[1])


async def _child_id(session: AsyncSession, flow_uid: str) -> str:
    child_id = await session.scalar(
        select(CollectionFlow.id).where(CollectionFlow.k8s_uid == flow_uid)
    )
    if child_id is None:
        raise UnknownFlow(flow_uid)
    return child_id


async def _record_run(
    session: AsyncSession, run: PhaseRunRecord, child_id: str | None = None
) -> bool:
    """Upsert a phase run unless it has finished already; True if the row was written.
    With the child's id known (the flow's status carries it) no query looks it up."""
    values = _phase_run_values(child_id or await _child_id(session, run.flow_uid), run)
    statement = _upsert_run(_dialect(session), run.state.finished)
    written = await session.execute(statement, values)
    return written.first() is not None


@functools.cache
def _upsert_run(dialect: str, finished: bool) -> Executable:
    """The phase run upsert, built once per dialect: its values are bound at execution. Built
    per call, the ON CONFLICT clause's `excluded` alias and the cache key of the values cost
    more CPU than the database does."""
    table = table_of(PhaseRun)
    statement = _insert(dialect, table)
    columns = ["job_name", "state"]
    if finished:
        columns += ["finished_at", "result", "error"]
    update: dict[str, object] = {c: statement.excluded[c] for c in columns}
    update["started_at"] = func.coalesce(table.c.started_at, statement.excluded.started_at)
    return statement.on_conflict_do_update(
        index_elements=[table.c.flow_id, table.c.phase, table.c.attempt],
        set_=update,
        where=table.c.state.not_in(_FINISHED_STATES),
    ).returning(table.c.id)


def _update_returning_id(table: Table, key: ColumnElement[bool], fields: list[str]) -> Update:
    """An UPDATE of `fields` (bound as `new_<field>`) where `key`, returning the row's id."""
    return (
        sql_update(table)
        .where(key)
        .values({name: bindparam(f"new_{name}") for name in fields})
        .returning(table.c.id)
    )


_CHILDREN, _MASTERS = table_of(CollectionFlow), table_of(MasterFlow)
_CHILD_FIELDS = ["current_phase", "next_phase", "status", "progress_percentage", "phase_state"]
_SYNC_CHILD = _update_returning_id(
    _CHILDREN,
    and_(
        _CHILDREN.c.k8s_uid == bindparam("flow_uid"),
        _CHILDREN.c.cancelled_at.is_(None),
    ),
    _CHILD_FIELDS,
)
_MASTER_FIELDS = ["status", "current_phase", "progress_percentage"]
_UPDATE_MASTER = _update_returning_id(
    _MASTERS,
    _MASTERS.c.id == bindparam("master_flow_id"),
    _MASTER_FIELDS,
)


async def _sync_child(session: AsyncSession, flow_uid: str, snapshot: ChildSnapshot) -> bool:
    values = {f"new_{name}": getattr(snapshot, name) for name in _CHILD_FIELDS}
    synced = await session.execute(_SYNC_CHILD, {"flow_uid": flow_uid, **values})
    if synced.first() is not None:
        return True
    await _child_id(session, flow_uid)
    return False


async def _update_master(session: AsyncSession, update: MasterFlowUpdate) -> None:
    values = {f"new_{name}": getattr(update, name) for name in _MASTER_FIELDS}
    updated = await session.execute(
        _UPDATE_MASTER, {"master_flow_id": update.master_flow_id, **values}
    )
    if updated.first() is None:
        raise UnknownMasterFlow(update.master_flow_id)


def _phase_run_values(flow_id: str, run: PhaseRunRecord) -> dict[str, object]:
    """The row's values; a finished run's start, if the row has none, stays unknown."""
    finished = run.state.finished
    return {
        "flow_id": flow_id,
        "phase": run.phase,
        "attempt": run.attempt,
        "job_name": run.job_name,
        "state": run.state.value,
        "started_at": None if finished else as_utc(run.at),
        "finished_at": as_utc(run.at) if finished else None,
        "result": run.result,
        "error": run.error,
    }
