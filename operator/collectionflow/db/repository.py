"""Every database read and write the operator makes, each in a fresh session of its own.

Handlers run concurrently and retry after crashes, so no session is shared between tasks and
every write is idempotent: rows are keyed by the flow's Kubernetes uid, by (flow, phase,
attempt) or by the journal's dedupe key, and written with INSERT ... ON CONFLICT, which holds
under concurrent writers on both PostgreSQL and SQLite. Connection failures surface as
`DatabaseUnavailable`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import overload

from sqlalchemy import Select, func, select
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
    utc_now,
)
from collectionflow.domain.records import (
    ChildSnapshot,
    FlowIds,
    FlowRef,
    JournalEntry,
    JsonObject,
    MasterFlowUpdate,
    PhaseRunRecord,
    PhaseRunState,
)

INITIAL_STATUS = "pending"
CANCELLED_STATUS = "cancelled"

_FINISHED_STATES = [state.value for state in PhaseRunState if state.finished]
_MASTER_IDS = uuid.UUID("6f1d1d0e-5f43-4a53-9d0e-8a7c1b9e2c11")
_CHILD_IDS = uuid.UUID("0b7e1c55-2f0a-4d8e-b1a4-3c9f6d2e7a90")


@dataclass(frozen=True)
class JournalRow:
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


class FlowRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def ensure_flow(self, ref: FlowRef) -> FlowIds:
        """The ids of the flow's master and child records, creating them on first call.

        Without `ref.master_flow_id` a master of its own is created. Ids derive from the uid,
        so concurrent first calls insert the same rows and all get the same answer.
        """
        with unavailable_on_connection_failure():
            async with self._sessions() as session, session.begin():
                existing = await _flow_ids(session, ref.flow_uid)
                if existing is not None:
                    return existing
                master_id = ref.master_flow_id or str(uuid.uuid5(_MASTER_IDS, ref.flow_uid))
                if ref.master_flow_id is None:
                    await session.execute(
                        _insert(session, MasterFlow)
                        .values(
                            id=master_id,
                            flow_type=ref.flow_type,
                            status=INITIAL_STATUS,
                            client_account_id=ref.client_account_id,
                            engagement_id=ref.engagement_id,
                        )
                        .on_conflict_do_nothing(index_elements=[MasterFlow.id])
                    )
                elif await session.get(MasterFlow, master_id) is None:
                    raise UnknownMasterFlow(master_id)
                await session.execute(
                    _insert(session, CollectionFlow)
                    .values(
                        id=str(uuid.uuid5(_CHILD_IDS, ref.flow_uid)),
                        master_flow_id=master_id,
                        k8s_namespace=ref.namespace,
                        k8s_name=ref.name,
                        k8s_uid=ref.flow_uid,
                        flow_type=ref.flow_type,
                        status=INITIAL_STATUS,
                    )
                    .on_conflict_do_nothing(index_elements=[CollectionFlow.k8s_uid])
                )
                created = (await session.execute(_flow_ids_query(ref.flow_uid))).one()
        return FlowIds(master_flow_id=created[0], child_flow_id=created[1])

    async def record_phase_started(self, run: PhaseRunRecord) -> None:
        """Insert the run, or refresh it while it is unfinished; a finished run stays as is."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session, session.begin():
                statement = _insert(session, PhaseRun).values(
                    _phase_run_values(await _child_id(session, run.flow_uid), run)
                )
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[PhaseRun.flow_id, PhaseRun.phase, PhaseRun.attempt],
                        set_={
                            "job_name": statement.excluded.job_name,
                            "state": statement.excluded.state,
                            "started_at": func.coalesce(
                                PhaseRun.started_at, statement.excluded.started_at
                            ),
                        },
                        where=PhaseRun.state.not_in(_FINISHED_STATES),
                    )
                )

    async def record_phase_finished(self, run: PhaseRunRecord) -> bool:
        """Record the run's outcome; False (and no change) if it had already finished."""
        if not run.state.finished:
            raise ValueError(f"record_phase_finished needs a finished state, not {run.state}")
        with unavailable_on_connection_failure():
            async with self._sessions() as session, session.begin():
                statement = _insert(session, PhaseRun).values(
                    _phase_run_values(await _child_id(session, run.flow_uid), run)
                )
                recorded = await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[PhaseRun.flow_id, PhaseRun.phase, PhaseRun.attempt],
                        set_={
                            "job_name": statement.excluded.job_name,
                            "state": statement.excluded.state,
                            "started_at": func.coalesce(
                                PhaseRun.started_at, statement.excluded.started_at
                            ),
                            "finished_at": statement.excluded.finished_at,
                            "result": statement.excluded.result,
                            "error": statement.excluded.error,
                        },
                        where=PhaseRun.state.not_in(_FINISHED_STATES),
                    ).returning(PhaseRun.id)
                )
                return recorded.first() is not None

    async def sync_child(self, flow_uid: str, snapshot: ChildSnapshot) -> bool:
        """Write the child's state; False (and no change) once the flow was cancelled."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session, session.begin():
                synced = await session.execute(
                    sql_update(CollectionFlow)
                    .where(
                        CollectionFlow.k8s_uid == flow_uid,
                        CollectionFlow.cancelled_at.is_(None),
                    )
                    .values(
                        current_phase=snapshot.current_phase,
                        next_phase=snapshot.next_phase,
                        status=snapshot.status,
                        progress_percentage=snapshot.progress_percentage,
                        phase_state=snapshot.phase_state,
                    )
                    .returning(CollectionFlow.id)
                )
                if synced.first() is not None:
                    return True
                await _child_id(session, flow_uid)
                return False

    async def update_master(self, update: MasterFlowUpdate) -> None:
        """Apply the update to the master flow with `update.master_flow_id`."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session, session.begin():
                updated = await session.execute(
                    sql_update(MasterFlow)
                    .where(MasterFlow.id == update.master_flow_id)
                    .values(
                        status=update.status,
                        current_phase=update.current_phase,
                        progress_percentage=update.progress_percentage,
                    )
                    .returning(MasterFlow.id)
                )
                if updated.first() is None:
                    raise UnknownMasterFlow(update.master_flow_id)

    async def journal(self, entry: JournalEntry) -> bool:
        """Store the entry unless one with its dedupe key exists; True if it was stored."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session, session.begin():
                inserted = await session.execute(
                    _insert(session, FailureJournal)
                    .values(
                        source=entry.source,
                        operation=entry.operation,
                        master_flow_id=entry.master_flow_id,
                        child_flow_id=entry.child_flow_id,
                        k8s_uid=entry.flow_uid,
                        phase=entry.phase,
                        next_phase=entry.next_phase,
                        agent_decision=entry.agent_decision,
                        error_message=entry.error_message,
                        diagnostics=entry.diagnostics,
                        dedupe_key=entry.dedupe_key,
                    )
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
            async with self._sessions() as session, session.begin():
                cancelled = await session.execute(
                    sql_update(CollectionFlow)
                    .where(CollectionFlow.k8s_uid == flow_uid)
                    .values(
                        status=CANCELLED_STATUS,
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
                    .values(state=PhaseRunState.CANCELLED.value, finished_at=now)
                )
                return True

    async def phase_outputs(self, flow_uid: str) -> dict[str, JsonObject]:
        """`{phase: outputs}` of the succeeded phases, from each phase's latest such attempt."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                rows = await session.execute(
                    select(PhaseRun.phase, PhaseRun.result)
                    .join(CollectionFlow, PhaseRun.flow_id == CollectionFlow.id)
                    .where(
                        CollectionFlow.k8s_uid == flow_uid,
                        PhaseRun.state == PhaseRunState.SUCCEEDED.value,
                    )
                    .order_by(PhaseRun.attempt)
                )
                return {phase: result or {} for phase, result in rows}

    async def phase_run(self, flow_uid: str, phase: str, attempt: int) -> PhaseRunRecord | None:
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                run = await session.scalar(
                    select(PhaseRun)
                    .join(CollectionFlow, PhaseRun.flow_id == CollectionFlow.id)
                    .where(
                        CollectionFlow.k8s_uid == flow_uid,
                        PhaseRun.phase == phase,
                        PhaseRun.attempt == attempt,
                    )
                )
        if run is None:
            return None
        return PhaseRunRecord(
            flow_uid=flow_uid,
            phase=run.phase,
            attempt=run.attempt,
            job_name=run.job_name,
            state=PhaseRunState(run.state),
            started_at=_utc(run.started_at),
            finished_at=_utc(run.finished_at),
            result=run.result,
            error=run.error,
        )

    async def child_snapshot(self, flow_uid: str) -> ChildSnapshot | None:
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                flow = await session.scalar(
                    select(CollectionFlow).where(CollectionFlow.k8s_uid == flow_uid)
                )
        return None if flow is None else _snapshot(flow)

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
            JournalRow(
                id=row.id,
                created_at=_utc(row.created_at),
                entry=JournalEntry(
                    source=row.source,
                    operation=row.operation,
                    dedupe_key=row.dedupe_key,
                    flow_uid=row.k8s_uid,
                    master_flow_id=row.master_flow_id,
                    child_flow_id=row.child_flow_id,
                    phase=row.phase,
                    next_phase=row.next_phase,
                    agent_decision=row.agent_decision,
                    error_message=row.error_message,
                    diagnostics=row.diagnostics,
                ),
            )
            for row in rows
        ]

    async def list_flows(self, limit: int = 100) -> list[FlowRow]:
        """The most recently created `limit` flows, newest first."""
        with unavailable_on_connection_failure():
            async with self._sessions() as session:
                rows = await session.execute(
                    select(CollectionFlow, MasterFlow)
                    .join(MasterFlow, CollectionFlow.master_flow_id == MasterFlow.id)
                    .order_by(CollectionFlow.created_at.desc(), CollectionFlow.id)
                    .limit(limit)
                )
                pairs = rows.all()
        return [
            FlowRow(
                ref=FlowRef(
                    flow_uid=flow.k8s_uid,
                    namespace=flow.k8s_namespace,
                    name=flow.k8s_name,
                    flow_type=flow.flow_type,
                    master_flow_id=flow.master_flow_id,
                    client_account_id=master.client_account_id,
                    engagement_id=master.engagement_id,
                ),
                ids=FlowIds(master_flow_id=flow.master_flow_id, child_flow_id=flow.id),
                snapshot=_snapshot(flow),
                updated_at=_utc(flow.updated_at),
                cancelled_at=_utc(flow.cancelled_at),
            )
            for flow, master in pairs
        ]


def _insert(session: AsyncSession, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT in the session's dialect."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
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


def _phase_run_values(flow_id: str, run: PhaseRunRecord) -> dict[str, object]:
    return {
        "flow_id": flow_id,
        "phase": run.phase,
        "attempt": run.attempt,
        "job_name": run.job_name,
        "state": run.state.value,
        "started_at": _utc(run.started_at),
        "finished_at": _utc(run.finished_at),
        "result": run.result,
        "error": run.error,
    }


def _snapshot(flow: CollectionFlow) -> ChildSnapshot:
    return ChildSnapshot(
        current_phase=flow.current_phase,
        next_phase=flow.next_phase,
        status=flow.status,
        progress_percentage=flow.progress_percentage,
        phase_state=flow.phase_state,
    )


@overload
def _utc(moment: datetime) -> datetime: ...
@overload
def _utc(moment: datetime | None) -> datetime | None: ...
def _utc(moment: datetime | None) -> datetime | None:
    """The same moment in UTC; naive times are UTC already (SQLite drops the offset)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
