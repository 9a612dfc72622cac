"""The database reads: phase runs, outputs, child records and the journal, for the operator,
the CLI and the tests. Each read opens a session of its own."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, overload

from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.errors import unavailable_on_connection_failure
from collectionflow.db.models import (
    CollectionFlow,
    FailureJournal,
    PhaseRun,
    table_of,
)
from collectionflow.domain.records import (
    ChildSnapshot,
    FlowIds,
    FlowRef,
    JournalEntry,
    JsonObject,
    RunRowState,
)

_RUNS, _CHILDREN = table_of(PhaseRun), table_of(CollectionFlow)
# Read at every phase start: built once, on the tables (no ORM entities to load).
_PHASE_OUTPUTS = (
    select(_RUNS.c.phase, _RUNS.c.result)
    .join(_CHILDREN, _RUNS.c.flow_id == _CHILDREN.c.id)
    .where(
        _CHILDREN.c.k8s_uid == bindparam("flow_uid"),
        _RUNS.c.state == RunRowState.SUCCEEDED.value,
    )
    .order_by(_RUNS.c.attempt)
)

# Below SQLite's 999 bound parameters (older builds) and small enough to stream.
SNAPSHOTS_PER_QUERY = 500
_SNAPSHOTS = select(
    _CHILDREN.c.k8s_uid,
    _CHILDREN.c.current_phase,
    _CHILDREN.c.next_phase,
    _CHILDREN.c.status,
    _CHILDREN.c.progress_percentage,
    _CHILDREN.c.phase_state,
).where(_CHILDREN.c.k8s_uid.in_(bindparam("uids", expanding=True)))

_DURATIONS = (
    select(_RUNS.c.phase, _RUNS.c.started_at, _RUNS.c.finished_at)
    .join(_CHILDREN, _RUNS.c.flow_id == _CHILDREN.c.id)
    .where(
        _CHILDREN.c.flow_type == bindparam("flow_type"),
        _RUNS.c.state == RunRowState.SUCCEEDED.value,
        _RUNS.c.started_at.is_not(None),
        _RUNS.c.finished_at.is_not(None),
    )
    .order_by(_RUNS.c.id.desc())
    .limit(bindparam("last"))
)


class JournalRow(NamedTuple):
    """A journal entry as stored: its row id and when it was written."""

    id: int
    created_at: datetime
    entry: JournalEntry


@dataclass(frozen=True)
class FlowRow:
    """A child flow with its ids, for listings."""

    ref: FlowRef
    ids: FlowIds
    snapshot: ChildSnapshot
    updated_at: datetime
    cancelled_at: datetime | None


class FlowQueries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def ping(self) -> None:
        """One round trip to the database (DatabaseUnavailable when it does not answer)."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                await session.execute(select(1))

    async def phase_outputs(self, flow_uid: str) -> dict[str, JsonObject]:
        """`{phase: outputs}` of the succeeded phases, from each phase's latest such attempt."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                rows = await session.execute(_PHASE_OUTPUTS, {"flow_uid": flow_uid})
                return {phase: result or {} for phase, result in rows}

    async def phase_durations(self, flow_type: str, last: int = 500) -> dict[str, list[float]]:
        """Seconds the last `last` succeeded phase runs of `flow_type` took, by phase."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                rows = await session.execute(_DURATIONS, {"flow_type": flow_type, "last": last})
        durations: dict[str, list[float]] = {}
        for phase, started, finished in rows:
            seconds = (_aware(finished) - _aware(started)).total_seconds()
            durations.setdefault(phase, []).append(max(seconds, 0.0))
        return durations

    async def child_snapshot(self, flow_uid: str) -> ChildSnapshot | None:
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                flow = await session.scalar(
                    select(CollectionFlow).where(CollectionFlow.k8s_uid == flow_uid)
                )
        return None if flow is None else snapshot_of(flow)

    async def child_snapshots(self, flow_uids: Collection[str]) -> dict[str, ChildSnapshot]:
        """The child records of the flows in `flow_uids`, by uid (a flow without one is absent),
        read in one query per `SNAPSHOTS_PER_QUERY` flows: the stall sweep reads every waiting
        flow's record this way once a re-list period."""
        uids = list(flow_uids)
        snapshots: dict[str, ChildSnapshot] = {}
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                for start in range(0, len(uids), SNAPSHOTS_PER_QUERY):
                    chunk = uids[start : start + SNAPSHOTS_PER_QUERY]
                    for row in await session.execute(_SNAPSHOTS, {"uids": chunk}):
                        snapshots[row.k8s_uid] = snapshot_of(row)
        return snapshots

    async def journal_entries(
        self, flow_uid: str | None = None, limit: int = 50
    ) -> list[JournalRow]:
        """The newest `limit` journal rows, of one flow or of all."""
        query = select(FailureJournal).order_by(FailureJournal.id.desc()).limit(limit)
        if flow_uid is not None:
            query = query.where(FailureJournal.k8s_uid == flow_uid)
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                rows: Sequence[FailureJournal] = (await session.scalars(query)).all()
        return [
            JournalRow(id=row.id, created_at=as_utc(row.created_at), entry=journal_entry_of(row))
            for row in rows
        ]

    async def uncancelled_flow_uids(self, namespaces: Collection[str] = ()) -> set[str]:
        """The uids of the flows not marked cancelled, in `namespaces` (every one when empty)."""
        query = select(CollectionFlow.k8s_uid).where(CollectionFlow.cancelled_at.is_(None))
        if namespaces:
            query = query.where(CollectionFlow.k8s_namespace.in_(namespaces))
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                return set((await session.scalars(query)).all())

    async def list_flows(self, limit: int = 100) -> list[FlowRow]:
        """The most recently created `limit` flows, newest first."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                flows = (
                    await session.scalars(
                        select(CollectionFlow)
                        .order_by(CollectionFlow.created_at.desc(), CollectionFlow.id)
                        .limit(limit)
                    )
                ).all()
        return [
            FlowRow(
                ref=FlowRef(flow.k8s_uid, flow.k8s_namespace, flow.k8s_name, flow.flow_type),
                ids=FlowIds(master_flow_id=flow.master_flow_id, child_flow_id=flow.id),
                snapshot=snapshot_of(flow),
                updated_at=as_utc(flow.updated_at),
                cancelled_at=as_utc(flow.cancelled_at),
            )
            for flow in flows
        ]


# The journal's columns are its entries' fields, named alike but for the flow's uid and ids.
_JOURNAL_COLUMNS = {
    entry_field.name: "k8s_uid" if entry_field.name == "flow_uid" else entry_field.name
    for entry_field in dataclasses.fields(JournalEntry)
    if entry_field.name != "ids"
}


def journal_columns(entry: JournalEntry) -> dict[str, Any]:
    """The journal row's column values for `entry`."""
    ids = entry.ids
    return {
        **{column: getattr(entry, name) for name, column in _JOURNAL_COLUMNS.items()},
        "master_flow_id": ids.master_flow_id if ids else None,
        "child_flow_id": ids.child_flow_id if ids else None,
    }


def journal_entry_of(row: FailureJournal) -> JournalEntry:
    ids = None
    if row.master_flow_id is not None and row.child_flow_id is not None:
        ids = FlowIds(row.master_flow_id, row.child_flow_id)
    fields = {name: getattr(row, column) for name, column in _JOURNAL_COLUMNS.items()}
    return JournalEntry(**fields, ids=ids)


def snapshot_of(flow: CollectionFlow | Row[*tuple[Any, ...]]) -> ChildSnapshot:
    """The snapshot in a child record, loaded as an entity or as a row of its columns."""
    return ChildSnapshot(
        current_phase=flow.current_phase,
        next_phase=flow.next_phase,
        status=flow.status,
        progress_percentage=flow.progress_percentage,
        phase_state=flow.phase_state,
    )


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: datetime | None) -> datetime | None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """The same moment in UTC; naive times are UTC already (SQLite drops the offset)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive times (stored as UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
