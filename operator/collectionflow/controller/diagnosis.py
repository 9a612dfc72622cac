"""The diagnosis of a flow from what this operator knows: its cache, its settings, the
database's health. No request: it is asked on reconciles of a running flow that may be held,
and by the stall sweep (`domain.sweep`)."""

from __future__ import annotations

import datetime as dt

from collectionflow.controller.ports import Diagnosing
from collectionflow.domain.decision import FlowView
from collectionflow.domain.diagnosis import Diagnosis, diagnose
from collectionflow.domain.evidence import Timeouts, evidence_for, phase_stall_timeout
from collectionflow.domain.plan import InvalidSpec
from collectionflow.domain.stall import heartbeat_every
from collectionflow.domain.sweep import Known, SweepRules, recoveries_for
from collectionflow.domain.sweep import may_be_held as held_maybe
from collectionflow.settings import OperatorSettings


def timeouts(operator: OperatorSettings) -> Timeouts:
    return Timeouts(
        operator.stall_timeout_seconds,
        operator.pod_start_timeout_seconds,
        operator.missed_completion_grace_seconds,
        operator.heartbeat_seconds,
    )


def sweep_rules(operator: OperatorSettings) -> SweepRules:
    """The rules the sweep goes by, made once from the operator's settings."""
    return SweepRules(
        timeouts(operator),
        dt.timedelta(seconds=operator.input_reminder_seconds),
        operator.max_recoveries,
        dt.timedelta(seconds=operator.relist_seconds),
    )


def known_of(ctx: Diagnosing, view: FlowView) -> Known:
    """What the cache and the operator's health know of the flow's current attempt."""
    namespace, current = view.namespace, view.status.current_job or ""
    return Known(
        ctx.excuses(),
        job=ctx.cache.job(namespace, current),
        pods=ctx.cache.job_pods(namespace, current) or [],
        lease=ctx.cache.lease(namespace, current),
        finished_seen_at=ctx.cache.finished_seen_at(namespace, current),
        database_down_since=ctx.database.down_since,
    )


def may_be_held(ctx: Diagnosing, view: FlowView, now: dt.datetime) -> bool:
    """Cheaply, from the cache, whether the diagnosis could say something the status does not
    (`domain.sweep.may_be_held`)."""
    operator = ctx.settings.operator
    try:
        stall_timeout = phase_stall_timeout(view.plan, view.status.phase, timeouts(operator))
    except InvalidSpec:
        return False
    interval = dt.timedelta(seconds=heartbeat_every(stall_timeout, operator.heartbeat_seconds))
    return held_maybe(view, known_of(ctx, view), interval, now)


def diagnosis_of(ctx: Diagnosing, view: FlowView, now: dt.datetime) -> Diagnosis | None:
    """What holds the flow, from the cache (None: its spec has no plan)."""
    try:
        plan = view.plan
    except InvalidSpec:
        return None
    status = view.status
    known = known_of(ctx, view)
    evidence = evidence_for(
        view, plan, now, timeouts(ctx.settings.operator), known.job, known.pods, known.lease, True
    )
    reminder = ctx.settings.operator.input_reminder_seconds
    asked = status.last_input_reminder_time or status.input_requested_at
    return diagnose(
        evidence,
        recoveries_for(view, ctx.settings.operator.max_recoveries),
        input_requested_at=status.input_requested_at,
        reminder_at=asked + dt.timedelta(seconds=reminder) if asked else None,
        database_down_since=ctx.database.down_since,
    )
