"""`collectionflow db flows` and `journal --flow-uid` read what the operator wrote."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from collectionflow.cli import app
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import FlowRef, JournalEntry
from collectionflow.settings import get_settings

pytestmark = pytest.mark.db


@pytest.fixture
def configured(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("COLLECTIONFLOW_DB__URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_flows_and_journal_list_what_the_database_holds(
    repository: FlowRepository, configured: None
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    ref = FlowRef(str(uuid.uuid4()), "team-a", name, "collection")
    ids = await repository.ensure_flow(ref)
    await repository.journal(
        JournalEntry(
            source="operator",
            operation="run_phase",
            dedupe_key=str(uuid.uuid4()),
            flow_uid=ref.flow_uid,
            phase="gap_analysis",
            error_message="exit code 3",
        )
    )
    runner = CliRunner()

    # The commands run their own event loop, so off this test's loop.
    wide = {"COLUMNS": "200"}
    flows = await asyncio.to_thread(runner.invoke, app, ["db", "flows"], env=wide)
    listed = await asyncio.to_thread(runner.invoke, app, ["db", "flows", "-o", "json"], env=wide)
    journal = await asyncio.to_thread(
        runner.invoke, app, ["journal", "--flow-uid", ref.flow_uid], env=wide
    )

    assert flows.exit_code == 0, flows.output
    assert f"team-a/{name}" in flows.output
    assert ids.master_flow_id in flows.output
    assert listed.exit_code == 0, listed.output
    [row] = [r for r in json.loads(listed.output) if r["uid"] == ref.flow_uid]
    assert (row["namespace"], row["name"], row["masterFlowId"]) == (
        "team-a",
        name,
        ids.master_flow_id,
    )
    assert journal.exit_code == 0, journal.output
    assert "exit code 3" in journal.output
    assert "gap_analysis" in journal.output
