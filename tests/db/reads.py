"""Reads the tests make of the database and the operator never does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.models import CollectionFlow, PhaseRun
from collectionflow.db.queries import as_utc
from collectionflow.domain.records import JsonObject, RunRowState


@dataclass(frozen=True)
class StoredRun:
    """One attempt's row: what its records wrote, its start and its end."""

    job_name: str
    state: RunRowState
    started_at: datetime | None
    finished_at: datetime | None
    result: JsonObject | None = None
    error: str | None = None


async def phase_run(
    sessions: async_sessionmaker[AsyncSession], flow_uid: str, phase: str, attempt: int
) -> StoredRun | None:
    """One attempt's row; None if there is none."""
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
    return StoredRun(
        job_name=run.job_name,
        state=RunRowState(run.state),
        started_at=as_utc(run.started_at),
        finished_at=as_utc(run.finished_at),
        result=run.result,
        error=run.error,
    )
