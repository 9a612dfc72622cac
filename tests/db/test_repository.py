"""The flow repository: idempotent writes, the right ids, and reads back of what was written."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.errors import UnknownFlow, UnknownMasterFlow
from collectionflow.db.models import CollectionFlow, MasterFlow
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import (
    ChildSnapshot,
    ExistingMaster,
    MasterFlowUpdate,
    NewMaster,
    RunRowState,
    Transition,
    master_update_for,
)
from db.builders import STARTED, count_phase_runs, new_ref, run_of
from db.reads import StoredRun, phase_run

pytestmark = pytest.mark.db


async def test_ensure_flow_is_idempotent_and_gives_distinct_master_and_child_ids(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()

    first = await repository.ensure_flow(ref)
    again = await repository.ensure_flow(ref)
    concurrent = await asyncio.gather(*(repository.ensure_flow(ref) for _ in range(8)))

    assert first.master_flow_id != first.child_flow_id
    assert {again, *concurrent} == {first}
    async with sessions() as session:
        masters = await session.scalar(
            select(func.count())
            .select_from(MasterFlow)
            .where(MasterFlow.id == first.master_flow_id)
        )
        children = (
            await session.scalars(
                select(CollectionFlow).where(CollectionFlow.k8s_uid == ref.flow_uid)
            )
        ).all()
    assert masters == 1
    assert [child.id for child in children] == [first.child_flow_id]
    assert children[0].master_flow_id == first.master_flow_id


async def test_concurrent_first_calls_create_one_flow(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()

    results = await asyncio.gather(*(repository.ensure_flow(ref) for _ in range(8)))

    assert len(set(results)) == 1
    async with sessions() as session:
        children = await session.scalar(
            select(func.count())
            .select_from(CollectionFlow)
            .where(CollectionFlow.k8s_uid == ref.flow_uid)
        )
    assert children == 1


async def test_ensure_flow_joins_a_given_master_and_rejects_an_unknown_one(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    owner = await repository.ensure_flow(new_ref(), NewMaster("account-1", "engagement-1"))

    joined = await repository.ensure_flow(new_ref(), ExistingMaster(owner.master_flow_id))

    assert joined.master_flow_id == owner.master_flow_id
    assert joined.child_flow_id != owner.child_flow_id
    async with sessions() as session:
        master = await session.get(MasterFlow, owner.master_flow_id)
    assert master is not None
    assert (master.client_account_id, master.engagement_id) == ("account-1", "engagement-1")
    missing = str(uuid.uuid4())
    with pytest.raises(UnknownMasterFlow, match=missing):
        await repository.ensure_flow(new_ref(), ExistingMaster(missing))


async def test_master_update_hits_the_master_row_and_never_the_child_id(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    ids = await repository.ensure_flow(ref)
    snapshot = ChildSnapshot(
        current_phase="finalization",
        next_phase=None,
        status="automated_collection",
        progress_percentage=95.0,
        phase_state={"synthesis": {"done": True}},
    )

    await repository.record_transition(Transition(child=(ref.flow_uid, snapshot)))
    await repository.record_transition(Transition(master=master_update_for(ids, snapshot)))

    async with sessions() as session:
        master = await session.get(MasterFlow, ids.master_flow_id)
    assert master is not None
    assert (master.status, master.current_phase, master.progress_percentage) == (
        "automated_collection",
        "finalization",
        95.0,
    )
    assert await repository.child_snapshot(ref.flow_uid) == snapshot
    with pytest.raises(UnknownMasterFlow):
        await repository.record_transition(
            Transition(master=MasterFlowUpdate(ids.child_flow_id, "running", "finalization", 95.0))
        )


async def test_a_child_update_of_an_unknown_flow_raises(repository: FlowRepository) -> None:
    with pytest.raises(UnknownFlow):
        await repository.record_transition(
            Transition(child=(str(uuid.uuid4()), ChildSnapshot(None, None, "pending", 0.0)))
        )
    assert await repository.child_snapshot(str(uuid.uuid4())) is None


async def test_phase_run_upsert_never_duplicates(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    ids = await repository.ensure_flow(ref)
    run = run_of(ref)

    await repository.record_transition(Transition(started=run))
    await repository.record_transition(Transition(started=run))
    await asyncio.gather(
        *(repository.record_transition(Transition(started=run)) for _ in range(10))
    )

    assert await count_phase_runs(sessions, ids.child_flow_id) == 1
    stored = StoredRun(run.job_name, RunRowState.RUNNING, STARTED, None)
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == stored


async def test_finishing_twice_is_a_quiet_no_op(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    ids = await repository.ensure_flow(ref)
    await repository.record_transition(Transition(started=run_of(ref)))
    finished = run_of(
        ref,
        state=RunRowState.SUCCEEDED,
        at=STARTED + timedelta(minutes=1),
        result={"platforms": ["aws"]},
    )

    outcomes = await asyncio.gather(
        *(repository.record_transition(Transition(finished=finished)) for _ in range(5))
    )
    late_failure = await repository.record_transition(
        Transition(finished=run_of(ref, state=RunRowState.FAILED, error="late"))
    )
    await repository.record_transition(Transition(started=run_of(ref)))

    assert sorted(outcomes) == [False, False, False, False, True]
    assert late_failure is False
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == StoredRun(
        finished.job_name, RunRowState.SUCCEEDED, STARTED, finished.at, {"platforms": ["aws"]}
    )
    assert await count_phase_runs(sessions, ids.child_flow_id) == 1


async def test_finish_without_a_recorded_start_inserts_the_run(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    await repository.ensure_flow(ref)
    failed = run_of(ref, state=RunRowState.FAILED, error="pod never started")

    assert await repository.record_transition(Transition(finished=failed))
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == StoredRun(
        failed.job_name, RunRowState.FAILED, None, STARTED, error="pod never started"
    )
    with pytest.raises(ValueError, match="finished state"):
        await repository.record_transition(Transition(finished=run_of(ref, attempt=2)))


async def test_phase_runs_of_an_unknown_flow_raise(repository: FlowRepository) -> None:
    with pytest.raises(UnknownFlow):
        await repository.record_transition(Transition(started=run_of(new_ref())))


async def test_times_come_back_in_utc(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    await repository.ensure_flow(ref)
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    await repository.record_transition(Transition(started=run_of(ref, at=local)))
    stored = await phase_run(sessions, ref.flow_uid, "initialization", 1)
    assert stored is not None
    assert stored.started_at == STARTED
    assert stored.started_at.tzinfo == UTC
