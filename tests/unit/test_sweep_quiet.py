"""The flows the stall sweep need not look at again (`domain.sweep.QuietFlows`): a flow that
waits costs a pass one lookup until its object changes or its input reminder is due."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from collectionflow.domain.decision import FlowView
from collectionflow.domain.machine import decide
from collectionflow.domain.sweep import Excuses, Known, Look, QuietFlows, look
from unit.machine_flows import NOW, at, pending, then
from unit.test_sweep import RULES

pytestmark = pytest.mark.unit
HOUR = dt.timedelta(hours=1)


def body(flow: FlowView, version: str) -> dict[str, Any]:
    return {"metadata": {"uid": flow.uid, "resourceVersion": version}}


def looked_at(quiet: QuietFlows, flow: FlowView, version: str, now: dt.datetime) -> Look:
    """What the sweep does: look, then note what it found."""
    seen = look(flow, Known(Excuses(NOW)), RULES, now)
    quiet.note(body(flow, version), flow, seen, RULES, now)
    return seen


def test_a_flow_waiting_for_input_is_skipped_until_its_reminder_is_due() -> None:
    waiting, quiet = at("manual_collection"), QuietFlows()
    assert looked_at(quiet, waiting, "7", NOW) is Look.NOTHING
    requested = waiting.status.input_requested_at
    assert requested is not None
    due = requested + RULES.input_reminder
    assert quiet.skips(body(waiting, "7"), due - dt.timedelta(seconds=1))
    assert not quiet.skips(body(waiting, "7"), due)
    assert looked_at(quiet, waiting, "7", due) is Look.CHECK


def test_a_changed_object_is_looked_at_again() -> None:
    waiting, quiet = at("manual_collection"), QuietFlows()
    looked_at(quiet, waiting, "7", NOW)
    assert not quiet.skips(body(waiting, "8"), NOW)


def test_a_running_flow_is_looked_at_every_pass() -> None:
    flow = pending()
    running, quiet = then(flow, decide(flow, None, NOW)), QuietFlows()
    quiet.note(body(running, "3"), running, Look.NOTHING, RULES, NOW)
    assert not quiet.skips(body(running, "3"), NOW)


def test_a_flow_found_with_something_to_do_is_not_remembered() -> None:
    waiting, quiet = at("manual_collection"), QuietFlows()
    looked_at(quiet, waiting, "7", NOW)
    quiet.note(body(waiting, "7"), waiting, Look.CHECK, RULES, NOW)
    assert not quiet.skips(body(waiting, "7"), NOW)


def test_a_flow_with_no_reminder_to_come_is_looked_at_again_after_the_recheck() -> None:
    """Its database record could have been changed outside the operator (DatabaseDrift)."""
    flow, quiet = pending(), QuietFlows()
    quiet.note(body(flow, "1"), flow, Look.NOTHING, RULES, NOW)
    assert quiet.skips(body(flow, "1"), NOW + RULES.recheck - dt.timedelta(seconds=1))
    assert not quiet.skips(body(flow, "1"), NOW + RULES.recheck)


def test_a_reminder_due_before_the_recheck_comes_first_and_inactive_flows_are_forgotten() -> None:
    waiting, quiet = at("manual_collection"), QuietFlows()
    rules = replace(RULES, input_reminder=dt.timedelta(minutes=1), recheck=HOUR)
    quiet.note(body(waiting, "7"), waiting, Look.NOTHING, rules, NOW)
    requested = waiting.status.input_requested_at
    assert requested is not None
    assert not quiet.skips(body(waiting, "7"), requested + rules.input_reminder)
    quiet.keep(set())
    assert not quiet.skips(body(waiting, "7"), NOW)
