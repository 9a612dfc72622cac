"""What the stall sweep decides about one flow from what the operator already knows: nothing,
a check on evidence read afresh (it looks stalled, or an input reminder is due), or a word in
its status (held by what no event announces, or no longer held). Pure: the sweep gathers the
bodies and times once, asks `look`, and acts on the answer; the check builds its evidence
with `evidence_of` from what it read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from collectionflow.api.models import ConditionType, FlowState, RecoveryPolicy
from collectionflow.api.reasons import ConditionReason
from collectionflow.domain.decision import FlowView
from collectionflow.domain.diagnosis import Recoveries, diagnose, waiting_status
from collectionflow.domain.evidence import Timeouts, evidence_for
from collectionflow.domain.observe import job_finished_at, lease_renewed_at
from collectionflow.domain.plan import InvalidSpec
from collectionflow.domain.records import ChildSnapshot
from collectionflow.domain.snapshot import child_snapshot
from collectionflow.domain.stall import (
    Evidence,
    beat_overdue,
    find_stall,
    input_reminder_at,
    input_reminder_due,
)


@dataclass(frozen=True)
class Outage:
    """When a dependency (the database, the apiserver) went down and came back."""

    down_since: dt.datetime | None = None
    back_at: dt.datetime | None = None

    def excuses(
        self, finished_at: dt.datetime | None, now: dt.datetime, grace: dt.timedelta
    ) -> bool:
        """Whether a Job that finished at `finished_at` is held by this outage: it is going on,
        or it ended after the Job finished and less than `grace` ago."""
        if self.down_since is not None:
            return True
        return (
            self.back_at is not None
            and finished_at is not None
            and finished_at <= self.back_at
            and now - self.back_at < grace
        )


@dataclass(frozen=True)
class Excuses:
    """What explains a Job's end going unnoticed, other than the flow: since when this
    operator acts (it catches up on start and on taking over), and the known outages."""

    acting_since: dt.datetime
    outages: tuple[Outage, ...] = ()

    def cover(
        self,
        finished_at: dt.datetime | None,
        now: dt.datetime,
        grace: dt.timedelta,
        seen_at: dt.datetime | None = None,
    ) -> bool:
        """Whether a Job finishing at `finished_at` unnoticed is explained: this operator was
        not acting yet, its watch learned of it only lately (`seen_at`: a watch came back and
        re-listed), or an outage held it."""
        started = finished_at is not None and finished_at <= self.acting_since + grace
        learned_lately = seen_at is not None and now - seen_at < grace
        return (
            started
            or learned_lately
            or any(outage.excuses(finished_at, now, grace) for outage in self.outages)
        )


@dataclass(frozen=True)
class SweepRules:
    """The operator's settings the sweep goes by."""

    timeouts: Timeouts
    input_reminder: dt.timedelta
    max_recoveries: int
    # How long a quiet flow goes unlooked at: then its database record is read again, the
    # safety net against a record changed outside the operator (the watches' re-list period).
    recheck: dt.timedelta = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Known:
    """What the operator knows of one flow's current attempt and of the world around it."""

    excuses: Excuses
    job: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    lease: dict[str, Any] | None = None
    finished_seen_at: dt.datetime | None = None
    child: ChildSnapshot | None = None  # the database's record, when read
    database_down_since: dt.datetime | None = None


class Look(StrEnum):
    NOTHING = "nothing"
    CHECK = "check"  # looks stalled, or an input reminder is due: check on fresh evidence
    SAY = "say"  # its status does not say what holds it (or that nothing does any more)
    WAKE = "wake"  # its Job ended and it has not moved on: its reconciler is woken


def recoveries_for(view: FlowView, default_max: int) -> Recoveries:
    """How a stall of the flow would be handled: its policy and what is left of its budget."""
    limit = view.spec.max_recoveries
    return Recoveries(
        view.spec.recovery_policy or RecoveryPolicy.RETRY_PHASE,
        view.status.recoveries,
        limit if limit is not None else default_max,
    )


def needs_child(view: FlowView) -> bool:
    """Whether the database's record of the flow is part of its evidence."""
    status = view.status
    return bool(status.master_flow_id) and status.state is not FlowState.PENDING


def evidence_of(
    view: FlowView, known: Known, rules: SweepRules, now: dt.datetime
) -> Evidence | None:
    """The flow's evidence for the stall rules (None: its spec has no plan)."""
    status = view.status
    try:
        plan = view.plan
    except InvalidSpec:
        return None
    excused = False
    if status.state is FlowState.RUNNING and status.current_job:
        # A Job held by an operator restart, a watch that just came back or a known outage is
        # not a missed completion.
        grace = dt.timedelta(seconds=rules.timeouts.missed_completion_grace_seconds)
        excused = known.excuses.cover(
            job_finished_at(known.job), now, grace, known.finished_seen_at
        )
    evidence = evidence_for(
        view, plan, now, rules.timeouts, known.job, known.pods, known.lease, excused
    )
    if not needs_child(view):
        return evidence
    return dataclasses.replace(
        evidence,
        database_child=known.child,
        expected_child=child_snapshot(plan.definition, status),
    )


def may_be_held(
    view: FlowView, known: Known, heartbeat: dt.timedelta | None, now: dt.datetime
) -> bool:
    """Cheaply, whether the diagnosis could say something the status does not: its Job has a
    pod that has not started, its worker stopped beating, the database is down, or the status
    says the flow is held. A flow that moves along asks no more."""
    reconciling = view.status.condition(ConditionType.RECONCILING)
    if known.database_down_since is not None or (
        reconciling is not None and reconciling.reason == ConditionReason.WAITING
    ):
        return True
    if any(pod["status"].get("phase") == "Pending" for pod in known.pods):
        return True
    renewed = lease_renewed_at(known.lease, known.job)
    if renewed is None:  # a started pod whose worker has not beaten yet, if it should
        return any(pod["status"].get("phase") == "Running" for pod in known.pods)
    return beat_overdue(renewed, heartbeat, now)


def look(view: FlowView, known: Known, rules: SweepRules, now: dt.datetime) -> Look:
    """What the sweep does about the flow."""
    status = view.status
    if input_reminder_due(
        status.state,
        status.input_requested_at,
        status.last_input_reminder_time,
        now,
        rules.input_reminder,
    ):
        return Look.CHECK
    evidence = evidence_of(view, known, rules, now)
    if evidence is None:
        return Look.NOTHING
    if find_stall(evidence) is not None:
        return Look.CHECK
    if status.state is FlowState.RUNNING and job_finished_at(known.job) is not None:
        # Excused as a missed completion (it ended before this operator acted, or during an
        # outage), but not acted on yet: no flow waits on a finished Job for an event.
        return Look.WAKE
    held = may_be_held(view, known, evidence.heartbeat_interval, now)
    if status.state is not FlowState.RUNNING or not held:
        return Look.NOTHING
    diagnosis = diagnose(
        evidence,
        recoveries_for(view, rules.max_recoveries),
        database_down_since=known.database_down_since,
    )
    return Look.SAY if waiting_status(view, diagnosis, now) is not None else Look.NOTHING


class QuietFlows:
    """The flows the sweep need not look at again until something changes: one that is not
    running, was found with nothing to do, and whose object is the same resourceVersion, until
    its input reminder is due or `rules.recheck` has passed. Every rule of `look` for such a
    flow reads only its object and the database's record, which only the flow's own
    transitions change, or someone outside the operator (the recheck finds that drift); so a
    waiting flow costs the sweep one lookup a pass and one look a recheck period."""

    def __init__(self) -> None:
        self._until: dict[str, tuple[str, dt.datetime]] = {}

    def skips(self, body: dict[str, Any], now: dt.datetime) -> bool:
        meta = body["metadata"]
        entry = self._until.get(meta["uid"])
        if entry is None or entry[0] != meta.get("resourceVersion"):
            return False
        return now < entry[1]

    def note(
        self, body: dict[str, Any], view: FlowView, seen: Look, rules: SweepRules, now: dt.datetime
    ) -> None:
        """What the sweep found of `view` (from `body`) at `now`."""
        status = view.status
        if seen is not Look.NOTHING or status.state is FlowState.RUNNING:
            self._until.pop(view.uid, None)
            return
        reminder = input_reminder_at(
            status.state,
            status.input_requested_at,
            status.last_input_reminder_time,
            rules.input_reminder,
        )
        due = min(now + rules.recheck, reminder or now + rules.recheck)
        self._until[view.uid] = (body["metadata"].get("resourceVersion", ""), due)

    def keep(self, uids: set[str]) -> None:
        """Forget the flows no longer active."""
        for uid in set(self._until) - uids:
            del self._until[uid]
