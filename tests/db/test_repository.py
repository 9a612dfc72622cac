"""The flow repository: idempotent writes, the right ids, and reads back of what was written."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db.errors import UnknownFlow, UnknownMasterFlow
from collectionflow.db.models import CollectionFlow, MasterFlow, PhaseRun
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import (
    ChildSnapshot,
    FlowRef,
    JournalEntry,
    MasterFlowUpdate,
    PhaseRunRecord,
    RunRowState,
    Transition,
    master_update_for,
)
from db.reads import phase_run

pytestmark = pytest.mark.db

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
    repository: FlowRepository,
) -> None:
    owner = await repository.ensure_flow(new_ref())

    joined = await repository.ensure_flow(new_ref(master_flow_id=owner.master_flow_id))

    assert joined.master_flow_id == owner.master_flow_id
    assert joined.child_flow_id != owner.child_flow_id
    missing = str(uuid.uuid4())
    with pytest.raises(UnknownMasterFlow, match=missing):
        await repository.ensure_flow(new_ref(master_flow_id=missing))


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
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == run


async def test_finishing_twice_is_a_quiet_no_op(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    ids = await repository.ensure_flow(ref)
    await repository.record_transition(Transition(started=run_of(ref)))
    finished = run_of(
        ref,
        state=RunRowState.SUCCEEDED,
        finished_at=STARTED + timedelta(minutes=1),
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
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == finished
    assert await count_phase_runs(sessions, ids.child_flow_id) == 1


async def test_finish_without_a_recorded_start_inserts_the_run(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    await repository.ensure_flow(ref)
    failed = run_of(ref, state=RunRowState.FAILED, started_at=None, error="pod never started")

    assert await repository.record_transition(Transition(finished=failed))
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == failed
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

    await repository.record_transition(Transition(started=run_of(ref, started_at=local)))
    stored = await phase_run(sessions, ref.flow_uid, "initialization", 1)

    assert stored is not None
    assert stored.started_at == STARTED
    assert stored.started_at.tzinfo == UTC


async def test_phase_outputs_take_the_latest_succeeded_attempt(repository: FlowRepository) -> None:
    ref = new_ref()
    await repository.ensure_flow(ref)
    done = {"state": RunRowState.SUCCEEDED, "finished_at": STARTED}
    await repository.record_transition(
        Transition(finished=run_of(ref, "initialization", 1, result={"a": 1}, **done))
    )
    await repository.record_transition(
        Transition(finished=run_of(ref, "platform_detection", 1, result={"p": 1}, **done))
    )
    await repository.record_transition(
        Transition(finished=run_of(ref, "platform_detection", 2, result={"p": 2}, **done))
    )
    await repository.record_transition(
        Transition(
            finished=run_of(ref, "platform_detection", 3, state=RunRowState.FAILED, error="boom")
        )
    )
    await repository.record_transition(Transition(started=run_of(ref, "automated_collection", 1)))

    assert await repository.phase_outputs(ref.flow_uid) == {
        "initialization": {"a": 1},
        "platform_detection": {"p": 2},
    }


async def test_journal_stores_each_dedupe_key_once(repository: FlowRepository) -> None:
    ref = new_ref()
    ids = await repository.ensure_flow(ref)
    entry = JournalEntry(
        source="operator",
        operation="phase_failed",
        dedupe_key=f"{ref.flow_uid}/platform_detection/1/phase_failed",
        flow_uid=ref.flow_uid,
        master_flow_id=ids.master_flow_id,
        child_flow_id=ids.child_flow_id,
        phase="platform_detection",
        next_phase="automated_collection",
        agent_decision="retry",
        error_message="credentials rejected",
        diagnostics={"exit_code": 1, "pod": "x"},
    )

    assert await repository.journal(entry)
    assert await repository.journal(entry) is False
    assert not any(await asyncio.gather(*(repository.journal(entry) for _ in range(5))))
    other = JournalEntry(source="operator", operation="db_write", dedupe_key=str(uuid.uuid4()))
    assert await repository.journal(other)

    rows = await repository.journal_entries(ref.flow_uid)
    assert [row.entry for row in rows] == [entry]
    assert rows[0].created_at.tzinfo == UTC
    newest = await repository.journal_entries(limit=1)
    assert [row.entry for row in newest] == [other]


async def test_mark_cancelled_cancels_the_flow_and_its_running_phases(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    await repository.ensure_flow(ref)
    succeeded = run_of(ref, state=RunRowState.SUCCEEDED, finished_at=STARTED, result={})
    await repository.record_transition(Transition(finished=succeeded))
    await repository.record_transition(Transition(started=run_of(ref, "platform_detection")))

    assert await repository.mark_cancelled(ref.flow_uid)
    first = {row.ref.flow_uid: row for row in await repository.list_flows()}[ref.flow_uid]
    assert await repository.mark_cancelled(ref.flow_uid)
    second = {row.ref.flow_uid: row for row in await repository.list_flows()}[ref.flow_uid]

    running = await phase_run(sessions, ref.flow_uid, "platform_detection", 1)
    assert running is not None
    assert running.state is RunRowState.CANCELLED
    assert running.finished_at is not None
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == succeeded
    assert first.snapshot.status == "cancelled"
    assert first.cancelled_at is not None
    assert second.cancelled_at == first.cancelled_at
    late = ChildSnapshot("x", None, "running", 50.0)
    await repository.record_transition(Transition(child=(ref.flow_uid, late)))
    assert (await repository.child_snapshot(ref.flow_uid)) == first.snapshot
    assert await repository.mark_cancelled(str(uuid.uuid4())) is False


async def test_uncancelled_flow_uids_leave_out_cancelled_flows_and_other_namespaces(
    repository: FlowRepository,
) -> None:
    kept, cancelled = new_ref(), new_ref()
    elsewhere = dataclasses.replace(new_ref(), namespace="elsewhere")
    for ref in (kept, cancelled, elsewhere):
        await repository.ensure_flow(ref)
    await repository.mark_cancelled(cancelled.flow_uid)

    everywhere = await repository.uncancelled_flow_uids()
    assert {kept.flow_uid, elsewhere.flow_uid} <= everywhere
    assert cancelled.flow_uid not in everywhere
    in_flows = await repository.uncancelled_flow_uids(["flows"])
    assert kept.flow_uid in in_flows
    assert elsewhere.flow_uid not in in_flows


async def test_list_flows_shows_refs_and_ids(repository: FlowRepository) -> None:
    ref = new_ref()
    ids = await repository.ensure_flow(ref)

    rows = {row.ref.flow_uid: row for row in await repository.list_flows()}

    assert rows[ref.flow_uid].ref == ref.__class__(
        **{**ref.__dict__, "master_flow_id": ids.master_flow_id}
    )
    assert rows[ref.flow_uid].ids == ids
    assert rows[ref.flow_uid].snapshot == ChildSnapshot(None, None, "initialized", 0.0, {})


async def test_a_transition_is_written_whole_or_not_at_all(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    ids = await repository.ensure_flow(ref)
    await repository.record_transition(Transition(started=run_of(ref)))
    snapshot = ChildSnapshot(
        "platform_detection",
        "automated_collection",
        "running",
        14,
        {"platform_detection": "running"},
    )
    finished = run_of(ref, state=RunRowState.SUCCEEDED, finished_at=STARTED)
    started = run_of(ref, "platform_detection")
    broken = MasterFlowUpdate(str(uuid.uuid4()), "running", "platform_detection", 14)

    with pytest.raises(UnknownMasterFlow):
        await repository.record_transition(
            Transition(finished, started, (ref.flow_uid, snapshot), broken, ids.child_flow_id)
        )
    run = await phase_run(sessions, ref.flow_uid, "initialization", 1)
    assert run is not None
    assert run.state is RunRowState.RUNNING, "rolled back"
    assert await count_phase_runs(sessions, ids.child_flow_id) == 1

    recorded = await repository.record_transition(
        Transition(
            finished,
            started,
            (ref.flow_uid, snapshot),
            master_update_for(ids, snapshot),
            ids.child_flow_id,
        )
    )
    assert recorded
    assert await count_phase_runs(sessions, ids.child_flow_id) == 2
    assert await repository.child_snapshot(ref.flow_uid) == snapshot
    async with sessions() as session:
        master = await session.get(MasterFlow, ids.master_flow_id)
    assert master is not None
    assert master.progress_percentage == 14
    again = await repository.record_transition(Transition(finished=finished))
    assert not again, "a finished run is recorded once"


async def test_phase_durations_are_the_flow_types_succeeded_runs(
    repository: FlowRepository,
) -> None:
    durations = {"initialization": [10.0, 30.0], "platform_detection": [60.0]}
    for attempt, seconds in enumerate([10.0, 30.0], start=1):
        ref = dataclasses.replace(new_ref(), flow_type="eta-probe")
        await repository.ensure_flow(ref)
        finished = STARTED + timedelta(seconds=seconds)
        done = {"state": RunRowState.SUCCEEDED, "finished_at": finished}
        await repository.record_transition(
            Transition(finished=run_of(ref, "initialization", attempt, **done))
        )
        if attempt == 1:
            await repository.record_transition(
                Transition(
                    finished=run_of(
                        ref,
                        "platform_detection",
                        1,
                        state=RunRowState.SUCCEEDED,
                        finished_at=STARTED + timedelta(seconds=60),
                    )
                )
            )
            failed = run_of(ref, "gap_analysis", 1, state=RunRowState.FAILED, finished_at=finished)
            await repository.record_transition(Transition(finished=failed))
    found = await repository.phase_durations("eta-probe")
    assert {phase: sorted(values) for phase, values in found.items()} == durations
    assert await repository.phase_durations("no-such-type") == {}
