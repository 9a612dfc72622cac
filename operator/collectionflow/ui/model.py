"""What the web view shows, worked out from flow and Event bodies: rows, a flow's timeline, the
notifications a change deserves, filters and pages. Pure: the hub feeds it what it watched.

Notifications follow the fix plan: only a flow that fails, stalls (`FlowStalled`) or succeeds
gets one, never an ordinary phase change, and each occurrence has a key of its own so that a
browser shows it once, also after it reconnects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from collectionflow.api.models import ConditionType, FlowState, PhaseRunState
from collectionflow.api.names import ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE
from collectionflow.api.reasons import ConditionReason

PAGE_SIZE = 50
STATES = tuple(state.value for state in FlowState)


@dataclass(frozen=True)
class FlowRow:
    uid: str
    namespace: str
    name: str
    state: str
    phase: str
    next_phase: str
    progress: int
    attempt: int
    created: str
    message: str
    held: bool = False  # running, but held by something other than its own work

    @property
    def tone(self) -> str:
        """The colour class of the state."""
        if self.held:
            return "held"
        tones: dict[str, str] = {
            FlowState.SUCCEEDED: "ok",
            FlowState.FAILED: "bad",
            FlowState.WAITING_FOR_INPUT: "wait",
            FlowState.SUSPENDED: "muted",
        }
        return tones.get(self.state, "busy")


def flow_row(body: dict[str, Any]) -> FlowRow:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return FlowRow(
        uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        state=str(status.get("state") or FlowState.PENDING),
        phase=str(status.get("phase") or ""),
        next_phase=str(status.get("nextPhase") or ""),
        progress=_percent(status.get("progressPercentage")),
        attempt=int(status.get("attempt") or 0),
        created=str(meta.get("creationTimestamp") or ""),
        message=str(status.get("message") or ""),
        held=any(
            c.get("type") == ConditionType.RECONCILING
            and c.get("reason") == ConditionReason.WAITING
            for c in status.get("conditions") or []
            if isinstance(c, dict)
        ),
    )


def _percent(value: Any) -> int:
    try:
        return max(0, min(100, int(value)))
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class Page:
    rows: list[FlowRow]
    number: int
    pages: int
    total: int


def page_of(rows: list[FlowRow], namespace: str | None, state: str | None, number: int) -> Page:
    """The rows that pass the filters, newest first, cut into pages of PAGE_SIZE."""
    kept = [
        row
        for row in rows
        if (not namespace or row.namespace == namespace) and (not state or row.state == state)
    ]
    kept.sort(key=lambda row: (row.created, row.name), reverse=True)
    pages = max(1, -(-len(kept) // PAGE_SIZE))
    number = max(1, min(number, pages))
    start = (number - 1) * PAGE_SIZE
    return Page(kept[start : start + PAGE_SIZE], number, pages, len(kept))


@dataclass(frozen=True)
class Note:
    """One notification: `key` names the occurrence, so it is shown once."""

    key: str
    level: str  # "ok" or "bad"
    namespace: str
    name: str
    text: str


def note_for_change(before: FlowRow | None, after: FlowRow, body: dict[str, Any]) -> Note | None:
    """A notification when a flow comes to Succeeded or Failed; nothing for anything else."""
    if after.state not in (FlowState.SUCCEEDED, FlowState.FAILED):
        return None
    if before is not None and before.state == after.state:
        return None
    if before is None:
        return None  # already finished when first seen: not news
    status = body.get("status") or {}
    occurrence = status.get("completedAt") or f"{after.attempt}"
    key = f"{after.uid}:{after.state}:{occurrence}"
    if after.state == FlowState.SUCCEEDED:
        return Note(key, "ok", after.namespace, after.name, "succeeded")
    return Note(key, "bad", after.namespace, after.name, f"failed: {after.message}")


def note_for_event(event: dict[str, Any]) -> Note | None:
    """A notification for a `FlowStalled` Event; one per Event object and count."""
    if event.get("reason") != "FlowStalled":
        return None
    involved = event.get("involvedObject") or {}
    meta = event.get("metadata") or {}
    key = f"{meta.get('uid', '')}:{event.get('count') or 1}"
    return Note(
        key,
        "bad",
        str(involved.get("namespace") or meta.get("namespace") or ""),
        str(involved.get("name") or ""),
        f"stalled: {event.get('message') or ''}",
    )


@dataclass(frozen=True)
class Attempt:
    phase: str
    attempt: int
    state: str
    started: str
    finished: str
    seconds: float | None
    message: str
    elapsed: float | None = None  # a running attempt: seconds since it started


def timeline(body: dict[str, Any], now: dt.datetime | None = None) -> list[Attempt]:
    """Every phase attempt the status records, abandoned and failed ones included; a running
    one with the time it has run so far (at `now`)."""
    attempts = []
    for entry in (body.get("status") or {}).get("phaseHistory") or []:
        started, finished = entry.get("startedAt") or "", entry.get("finishedAt") or ""
        running = entry.get("state") == PhaseRunState.RUNNING and now is not None and started
        attempts.append(
            Attempt(
                phase=str(entry.get("name", "")),
                attempt=int(entry.get("attempt") or 0),
                state=str(entry.get("state", "")),
                started=started,
                finished=finished,
                seconds=_seconds(started, finished),
                message=str(entry.get("message") or ""),
                elapsed=round((now - _time(started)).total_seconds(), 1)
                if running and now is not None
                else None,
            )
        )
    return attempts


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _seconds(started: str, finished: str) -> float | None:
    if not started or not finished:
        return None
    return round((_time(finished) - _time(started)).total_seconds(), 1)


def ago(value: str | None, now: dt.datetime) -> str:
    """An API timestamp as people read it: "3m ago" (the exact time goes in a tooltip)."""
    if not value:
        return ""
    try:
        seconds = (now - _time(str(value))).total_seconds()
    except ValueError:
        return str(value)
    future, seconds = seconds < 0, abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            text = f"{seconds // size:.0f}{unit}"
            break
    else:
        text = f"{seconds:.0f}s"
    return f"in {text}" if future else f"{text} ago"


def newest_first(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A flow's Events by their last time, newest first."""

    def when(event: dict[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or "")

    return sorted(events, key=when, reverse=True)


def input_command(body: dict[str, Any]) -> str | None:
    """For a flow that waits for input, the kubectl command that gives it."""
    if (body.get("status") or {}).get("state") != FlowState.WAITING_FOR_INPUT:
        return None
    meta = body.get("metadata") or {}
    example = json.dumps({"answers": {}}, separators=(",", ":"))
    return (
        f"kubectl annotate collectionflow {meta.get('name')} -n {meta.get('namespace')} "
        f"{ANNOTATION_INPUT}='{example}' {ANNOTATION_INPUT_COMPLETE}=true --overwrite"
    )
