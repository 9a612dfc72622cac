"""How a stall and its recovery are made visible: Event, journal row, metric, log line.

Shared by the stall timer and by the reconcile, which is where a missed completion is
usually first seen (the operator's first reconcile after a restart).
"""

from __future__ import annotations

import datetime as dt
import logging

from collectionflow.api.reasons import EventReason
from collectionflow.controller.context import flow_logger
from collectionflow.controller.ports import Telling
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.domain.decision import FlowView
from collectionflow.domain.journal import stall_entry
from collectionflow.domain.recovery import RecoveryPlan
from collectionflow.domain.stall import Finding, caught_up_message
from collectionflow.k8s.gateway import ObjectRef


async def report_stall(
    ctx: Telling, view: FlowView, finding: Finding, plan: RecoveryPlan, now: dt.datetime
) -> None:
    ctx.leadership.fence()
    ctx.metrics.stalls.labels(reason=finding.reason.value).inc()
    await _tell(ctx, view, EventReason.FLOW_STALLED, f"{finding.reason.value}: {finding.message}")
    await journal_stall(ctx, view, "stall_detected", finding, plan, now)


async def report_recovered(
    ctx: Telling, view: FlowView, finding: Finding, plan: RecoveryPlan
) -> None:
    ctx.metrics.recoveries.labels(reason=finding.reason.value).inc()
    await _tell(ctx, view, EventReason.FLOW_RECOVERED, f"{finding.reason.value}: {plan.summary}")
    await journal_stall(ctx, view, "recovered", finding, plan, ctx.clock())


async def _tell(ctx: Telling, view: FlowView, reason: EventReason, message: str) -> None:
    """The Event and the log line: a Warning for a stall, Normal for what went well."""
    warning = reason is EventReason.FLOW_STALLED
    log = flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt)
    log.log(logging.WARNING if warning else logging.INFO, "%s %s", reason.value, message)
    ref = ObjectRef(view.namespace, view.name, view.uid)
    await ctx.kube.post_event(ref, "Warning" if warning else "Normal", reason, message)


async def report_caught_up(ctx: Telling, view: FlowView, finding: Finding) -> None:
    """A Job that finished while this operator was not running yet, or while the database was
    out: the flow advanced once it could. Not a stall (nothing is wrong with the flow), so a
    Normal Event, no journal row."""
    await _tell(ctx, view, EventReason.CAUGHT_UP, caught_up_message(finding))


async def journal_stall(
    ctx: Telling,
    view: FlowView,
    operation: str,
    finding: Finding,
    plan: RecoveryPlan,
    now: dt.datetime,
) -> None:
    try:
        await ctx.repository.journal(stall_entry(view, operation, finding, plan, now))
    except DatabaseUnavailable as error:
        flow_logger(view.namespace, view.name).warning("journal unavailable: %s", error)
