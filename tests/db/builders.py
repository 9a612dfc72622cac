"""What the repository tests build: flows, their references and their runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.models import PhaseRun
from collectionflow.domain.records import (
    FlowRef,
    PhaseRunRecord,
    RunRowState,
)

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def new_ref(master_flow_id: str | None = None) -> FlowRef:
    uid = str(uuid.uuid4())
    return FlowRef(
        flow_uid=uid,
        namespace="flows",
        name=f"flow-{uid[:8]}",
        flow_type="collection",
        master_flow_id=master_flow_id,
        client_account_id="account-1",
        engagement_id="engagement-1",
    )


def run_of(
    ref: FlowRef, phase: str = "initialization", attempt: int = 1, **changes: object
) -> PhaseRunRecord:
    fields: dict[str, object] = {
        "flow_uid": ref.flow_uid,
        "phase": phase,
        "attempt": attempt,
        "job_name": f"{ref.name}-{phase[:10]}-{attempt}",
        "state": RunRowState.RUNNING,
        "started_at": STARTED,
    }
    fields.update(changes)
    return PhaseRunRecord(**fields)  # type: ignore[arg-type]


async def count_phase_runs(sessions: async_sessionmaker[AsyncSession], child_id: str) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count()).select_from(PhaseRun).where(PhaseRun.flow_id == child_id)
        )
    return count or 0
