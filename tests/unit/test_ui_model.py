"""What the web view shows: rows, pages, the notifications a change deserves, the timeline,
the input command, and the vendored scripts it serves."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest

from collectionflow.ui.model import (
    PAGE_SIZE,
    ago,
    flow_row,
    input_command,
    newest_first,
    note_for_change,
    note_for_event,
    page_of,
    timeline,
)

pytestmark = pytest.mark.unit

STATIC = Path(__file__).parents[2] / "operator" / "collectionflow" / "ui" / "static"


def body(name: str = "f", state: str = "Running", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": f"uid-{name}",
            "namespace": "team-a",
            "name": name,
            "creationTimestamp": f"2026-11-25T10:00:{len(name):02d}Z",
        },
        "status": {"state": state, "phase": "gap_analysis", "progressPercentage": 40, **status},
    }


def test_a_row_reads_the_status_and_tolerates_nonsense() -> None:
    row = flow_row(body(nextPhase="synthesis", attempt=2, message="m"))
    assert (row.phase, row.next_phase, row.progress, row.attempt, row.tone) == (
        "gap_analysis",
        "synthesis",
        40,
        2,
        "busy",
    )
    odd = flow_row({"metadata": {"uid": "u"}, "status": {"progressPercentage": "lots"}})
    assert (odd.state, odd.progress) == ("Pending", 0)
    assert flow_row(body(progressPercentage=250)).progress == 100


@pytest.mark.parametrize(
    ("before", "after", "level"),
    [
        ("Running", "Succeeded", "ok"),
        ("Running", "Failed", "bad"),
        ("WaitingForInput", "Failed", "bad"),
    ],
)
def test_ending_is_news(before: str, after: str, level: str) -> None:
    ended = body(state=after, completedAt="2026-11-25T11:00:00Z", message="exit code 3")
    note = note_for_change(flow_row(body(state=before)), flow_row(ended), ended)
    assert note is not None
    assert note.level == level
    assert note.key == "uid-f:" + after + ":2026-11-25T11:00:00Z"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("Running", "Running"),
        ("Running", "WaitingForInput"),
        ("Pending", "Running"),
        ("Succeeded", "Succeeded"),
        (None, "Succeeded"),
    ],
)
def test_ordinary_changes_and_old_news_are_not(before: str | None, after: str) -> None:
    previous = None if before is None else flow_row(body(state=before))
    assert note_for_change(previous, flow_row(body(state=after)), body(state=after)) is None


def test_a_stall_event_is_news_once_per_count() -> None:
    event = {
        "metadata": {"uid": "ev-1", "namespace": "team-a"},
        "involvedObject": {"name": "f", "namespace": "team-a"},
        "reason": "FlowStalled",
        "message": "NoProgress: no heartbeat",
        "count": 2,
    }
    note = note_for_event(event)
    assert note is not None
    assert (note.key, note.level, note.name) == ("ev-1:2", "bad", "f")
    assert note_for_event({**event, "reason": "PhaseStarted"}) is None


def test_pages_filter_and_put_the_newest_first() -> None:
    rows = [
        flow_row(body(name="x" * n, state="Failed" if n % 2 else "Running")) for n in range(1, 121)
    ]
    first = page_of(rows, None, "Running", 1)
    assert (first.total, first.pages, len(first.rows)) == (60, 2, PAGE_SIZE)
    assert first.rows[0].created >= first.rows[-1].created
    assert page_of(rows, None, "Running", 9).number == 2
    assert page_of(rows, "team-b", None, 1).total == 0


def test_the_timeline_has_every_attempt_with_its_duration() -> None:
    flow = body(
        phaseHistory=[
            {
                "name": "gap_analysis",
                "attempt": 1,
                "state": "Abandoned",
                "startedAt": "2026-11-25T10:00:00Z",
                "finishedAt": "2026-11-25T10:05:30Z",
                "message": "stalled: NoProgress",
            },
            {
                "name": "gap_analysis",
                "attempt": 2,
                "state": "Running",
                "startedAt": "2026-11-25T10:05:31Z",
            },
        ]
    )
    abandoned, running = timeline(flow)
    assert (abandoned.state, abandoned.seconds, abandoned.message) == (
        "Abandoned",
        330.0,
        "stalled: NoProgress",
    )
    assert (running.attempt, running.seconds) == (2, None)


def test_the_input_command_only_for_a_waiting_flow() -> None:
    command = input_command(body(name="asks", state="WaitingForInput"))
    assert command is not None
    assert command.startswith("kubectl annotate collectionflow asks -n team-a ")
    assert "flows.collectionflow.io/input-complete=true" in command
    assert input_command(body(state="Running")) is None


def test_the_vendored_scripts_are_the_recorded_ones() -> None:
    recorded: dict[str, str] = {}
    for line in (STATIC / "VENDORED.sha256").read_text().splitlines():
        digest, name = line.split()
        recorded[name] = digest
    assert set(recorded) == {"htmx.min.js", "sse.js"}
    for name, digest in recorded.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name


def test_a_running_attempt_shows_how_long_it_has_run() -> None:
    flow = body(
        phaseHistory=[
            {
                "name": "gap_analysis",
                "attempt": 1,
                "state": "Running",
                "startedAt": "2026-11-25T10:00:00Z",
            }
        ]
    )
    now = dt.datetime(2026, 11, 25, 10, 2, 5, tzinfo=dt.UTC)
    (running,) = timeline(flow, now)
    assert (running.seconds, running.elapsed) == (None, 125.0)


def test_times_read_as_ago_and_events_come_newest_first() -> None:
    now = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=dt.UTC)
    assert ago("2026-11-25T09:59:30Z", now) == "30s ago"
    assert ago("2026-11-25T09:57:00.123456Z", now) == "2m ago"
    assert ago("2026-11-24T08:00:00Z", now) == "1d ago"
    assert ago("2026-11-25T10:05:00Z", now) == "in 5m"
    assert ago("", now) == ""
    assert ago("not a time", now) == "not a time"
    events = [
        {"reason": "A", "lastTimestamp": "2026-11-25T09:00:00Z"},
        {"reason": "C", "lastTimestamp": "2026-11-25T09:30:00Z"},
        {"reason": "B", "lastTimestamp": "2026-11-25T09:10:00Z"},
    ]
    assert [e["reason"] for e in newest_first(events)] == ["C", "B", "A"]


def test_a_flow_held_by_its_pod_is_marked() -> None:
    waiting = body(state="Running")
    waiting["status"]["conditions"] = [
        {
            "type": "Reconciling",
            "status": "True",
            "reason": "Waiting",
            "message": "pod cannot start",
        }
    ]
    row = flow_row(waiting)
    assert row.held
    assert row.tone == "held"
    assert not flow_row(body(state="Running")).held
