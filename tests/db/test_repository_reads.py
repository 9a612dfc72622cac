"""The flow repository's reads and bulk writes: outputs, the journal, cancellations,
listings, whole transitions and phase durations."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collectionflow.db import queries
from collectionflow.db.errors import UnknownMasterFlow
from collectionflow.db.models import FailureJournal, MasterFlow, table_of
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import (
    ChildSnapshot,
    JournalEntry,
    MasterFlowUpdate,
    RunRowState,
    Transition,
    master_update_for,
)
from db.builders import STARTED, count_phase_runs, new_ref, run_for, run_of
from db.reads import StoredRun, phase_run

pytestmark = pytest.mark.db


async def test_phase_outputs_take_the_latest_succeeded_attempt(repository: FlowRepository) -> None:
    ref = new_ref()
    await repository.ensure_flow(ref)
    done = {"state": RunRowState.SUCCEEDED}
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
        ids=ids,
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


def test_every_journal_column_but_its_key_and_time_is_an_entry_field() -> None:
    entry = JournalEntry(source="s", operation="o", dedupe_key="k", flow_uid="u")

    columns = queries.journal_columns(entry)

    assert set(columns) | {"id", "created_at"} == set(table_of(FailureJournal).c.keys())
    assert columns["k8s_uid"] == "u"


async def test_mark_cancelled_cancels_the_flow_and_its_running_phases(
    repository: FlowRepository, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ref = new_ref()
    await repository.ensure_flow(ref)
    succeeded = run_of(ref, state=RunRowState.SUCCEEDED, result={})
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
    assert await phase_run(sessions, ref.flow_uid, "initialization", 1) == StoredRun(
        succeeded.job_name, RunRowState.SUCCEEDED, None, STARTED, {}
    )
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

    assert rows[ref.flow_uid].ref == ref
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
    finished = run_of(ref, state=RunRowState.SUCCEEDED)
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
        await run_for(repository, ref, "initialization", attempt, seconds)
        if attempt == 1:
            await run_for(repository, ref, "platform_detection", 1, 60)
            failed = run_of(ref, "gap_analysis", 1, state=RunRowState.FAILED, at=finished)
            await repository.record_transition(Transition(finished=failed))
    found = await repository.phase_durations("eta-probe")
    assert {phase: sorted(values) for phase, values in found.items()} == durations
    assert await repository.phase_durations("no-such-type") == {}


async def test_child_snapshots_read_many_records_in_chunks_and_leave_out_the_unknown(
    repository: FlowRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "SNAPSHOTS_PER_QUERY", 2)  # 5 flows: three chunks
    expected: dict[str, ChildSnapshot] = {}
    for index in range(5):
        ref = new_ref()
        await repository.ensure_flow(ref)
        snapshot = ChildSnapshot(
            "platform_detection", None, "running", float(index), {"platform_detection": "running"}
        )
        await repository.record_transition(Transition(child=(ref.flow_uid, snapshot)))
        expected[ref.flow_uid] = snapshot
    unknown = str(uuid.uuid4())

    found = await repository.child_snapshots([*expected, unknown])

    assert found == expected
    assert found == {uid: await repository.child_snapshot(uid) for uid in expected}
    assert await repository.child_snapshots([]) == {}
