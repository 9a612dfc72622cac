"""What the web view shows, worked out from flow and Event bodies: rows, a flow's timeline, the
notifications a change deserves, filters and pages. Pure: the hub feeds it what it watched.

Notifications follow the fix plan: only a flow that fails, stalls (`FlowStalled`) or succeeds
gets one, never an ordinary phase change, and each occurrence has a key of its own so that a
browser shows it once, also after it reconnects.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from collectionflow.api.names import ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE

PAGE_SIZE = 50
STATES = ("Pending", "Running", "WaitingForInput", "Suspended", "Succeeded", "Failed")


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

    @property
    def tone(self) -> str:
        """The colour class of the state."""
        return {
            "Succeeded": "ok",
            "Failed": "bad",
            "WaitingForInput": "wait",
            "Suspended": "muted",
        }.get(self.state, "busy")


def flow_row(body: dict[str, Any]) -> FlowRow:
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return FlowRow(
        uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        state=str(status.get("state") or "Pending"),
        phase=str(status.get("phase") or ""),
        next_phase=str(status.get("nextPhase") or ""),
        progress=_percent(status.get("progressPercentage")),
        attempt=int(status.get("attempt") or 0),
        created=str(meta.get("creationTimestamp") or ""),
        message=str(status.get("message") or ""),
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
    if after.state not in ("Succeeded", "Failed"):
        return None
    if before is not None and before.state == after.state:
        return None
    if before is None:
        return None  # already finished when first seen: not news
    status = body.get("status") or {}
    occurrence = status.get("completedAt") or f"{after.attempt}"
    key = f"{after.uid}:{after.state}:{occurrence}"
    if after.state == "Succeeded":
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


def timeline(body: dict[str, Any]) -> list[Attempt]:
    """Every phase attempt the status records, abandoned and failed ones included."""
    attempts = []
    for entry in (body.get("status") or {}).get("phaseHistory") or []:
        started, finished = entry.get("startedAt") or "", entry.get("finishedAt") or ""
        attempts.append(
            Attempt(
                phase=str(entry.get("name", "")),
                attempt=int(entry.get("attempt") or 0),
                state=str(entry.get("state", "")),
                started=started,
                finished=finished,
                seconds=_seconds(started, finished),
                message=str(entry.get("message") or ""),
            )
        )
    return attempts


def _seconds(started: str, finished: str) -> float | None:
    if not started or not finished:
        return None
    begin = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(finished.replace("Z", "+00:00"))
    return round((end - begin).total_seconds(), 1)


def input_command(body: dict[str, Any]) -> str | None:
    """For a flow that waits for input, the kubectl command that gives it."""
    if (body.get("status") or {}).get("state") != "WaitingForInput":
        return None
    meta = body.get("metadata") or {}
    example = json.dumps({"answers": {}}, separators=(",", ":"))
    return (
        f"kubectl annotate collectionflow {meta.get('name')} -n {meta.get('namespace')} "
        f"{ANNOTATION_INPUT}='{example}' {ANNOTATION_INPUT_COMPLETE}=true --overwrite"
    )
