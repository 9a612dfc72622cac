"""What the repository tests build: flows, their references and their runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.models import PhaseRun
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import (
    FlowRef,
    PhaseRunRecord,
    RunRowState,
    Transition,
)

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def new_ref() -> FlowRef:
    uid = str(uuid.uuid4())
    return FlowRef(flow_uid=uid, namespace="flows", name=f"flow-{uid[:8]}", flow_type="collection")


def run_of(
    ref: FlowRef, phase: str = "initialization", attempt: int = 1, **changes: object
) -> PhaseRunRecord:
    fields: dict[str, object] = {
        "flow_uid": ref.flow_uid,
        "phase": phase,
        "attempt": attempt,
        "job_name": f"{ref.name}-{phase[:10]}-{attempt}",
        "state": RunRowState.RUNNING,
        "at": STARTED,
    }
    fields.update(changes)
    return PhaseRunRecord(**fields)  # type: ignore[arg-type]


async def count_phase_runs(sessions: async_sessionmaker[AsyncSession], child_id: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(PhaseRun).where(PhaseRun.flow_id == child_id)
        )
    return count or 0


async def run_for(
    repository: FlowRepository, ref: FlowRef, phase: str, attempt: int, seconds: float
) -> None:
    """Record an attempt that started at STARTED and succeeded `seconds` later."""
    await repository.record_transition(Transition(started=run_of(ref, phase, attempt)))
    done = run_of(
        ref, phase, attempt, state=RunRowState.SUCCEEDED, at=STARTED + timedelta(seconds=seconds)
    )
    await repository.record_transition(Transition(finished=done))
