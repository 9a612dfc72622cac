"""Reads the tests make of the database and the operator never does."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.models import CollectionFlow, PhaseRun
from collectionflow.db.queries import as_utc
from collectionflow.domain.records import PhaseRunRecord, RunRowState


async def phase_run(
    sessions: async_sessionmaker[AsyncSession], flow_uid: str, phase: str, attempt: int
) -> PhaseRunRecord | None:
    """One attempt's row, as a record; None if there is none."""
    async with sessions() as session:
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
        state=RunRowState(run.state),
        started_at=as_utc(run.started_at),
        finished_at=as_utc(run.finished_at),
        result=run.result,
        error=run.error,
    )
