"""What every "not moving" e2e case checks: the status says the cause within seconds, `why`
says it with what happens next and when, the operator acts at that time, and the Event and
the journal row name the cause."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.flows import Flows
from harness.records import journal_rows
from harness.waiting import wait_for

SWEEP_SECONDS = 2
Cflow = Callable[..., subprocess.CompletedProcess[str]]


def parse(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


def reconciling(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == "Reconciling")


@dataclass(frozen=True)
class Said:
    """What the flow said of its cause: the status, `why -o json`, and when the status said
    it."""

    status: dict[str, Any]
    why: dict[str, Any]
    at: dt.datetime

    @property
    def due(self) -> dt.datetime:
        return parse(self.why["nextAt"])


def said_within(
    flows: Flows,
    cflow: Cflow,
    name: str,
    needle: str,
    since: dt.datetime,
    waits_for: str,
    seconds: float = 10,
) -> Said:
    """The status message names `needle` with reason Waiting within `seconds` of `since`, and
    `why` says the same cause (text and JSON), with a next action and its time."""
    try:
        status = flows.wait_for(
            name,
            lambda s: needle in (s.get("message") or ""),
            f"the status naming {needle!r}",
            timeout=seconds + 20,
        )
    except AssertionError as missed:
        why = cflow("why", name, "-n", flows.namespace, "-o", "json")
        raise AssertionError(f"{missed}; why says: {why.stdout}{why.stderr}") from None
    at = dt.datetime.now(dt.UTC)
    print(f"{name}: said {(at - since).total_seconds():.1f}s after the cause: {status['message']}")
    assert (at - since).total_seconds() <= seconds, "said within seconds of the cause"
    assert status["state"] == "Running"
    assert reconciling(status)["reason"] == "Waiting"
    text = cflow("why", name, "-n", flows.namespace)
    assert text.returncode == 0, text.stderr
    assert f"Waits for:  {waits_for}" in text.stdout
    assert needle in " ".join(text.stdout.split()), text.stdout  # as wrapped to 80 columns
    why = json.loads(cflow("why", name, "-n", flows.namespace, "-o", "json").stdout)
    assert (why["waitsFor"], why["abnormal"]) == (waits_for, True)
    assert why["nextAt"], "when the operator acts"
    return Said(status, why, at)


def acted_when_announced(due: dt.datetime, acted: dt.datetime) -> None:
    lateness = (acted - due).total_seconds()
    print(f"announced for {due:%H:%M:%S}, acted at {acted:%H:%M:%S.%f} ({lateness:+.1f}s)")
    assert -1 <= lateness <= SWEEP_SECONDS + 2, "acted at the announced time"


def cause_recorded(flows: Flows, db_url: str, uid: str, name: str, *needles: str) -> None:
    """A FlowStalled Event and a journal row name every one of `needles`."""
    stalls = [e.message for e in flows.events(name) if e.reason == "FlowStalled"]
    assert any(all(n in m for n in needles) for m in stalls), stalls
    rows = wait_for(lambda: journal_rows(db_url, uid), "the journal rows")
    messages = [row.error_message or "" for row in rows]
    assert any(all(n in m for n in needles) for m in messages), messages
