"""The stall check: gather evidence, judge it (domain.stall), recover (domain.recovery).

One sweep every interval goes over the active flows in the watch cache and judges each on
cached evidence (its Job, finished pods and heartbeat Lease as watched, the database's child
record). A flow that looks stalled is judged again on the cache once no reconcile of it is
in flight, and only if it still does is it checked on evidence read from the API, and acted
on. A Job without a heartbeat or a started pod past the pod start timeout looks stalled,
so its pods are read then; the pods read are kept, so a phase without a heartbeat (a command
of its own) is read once, not every pass.

Every detection is a Warning Event `FlowStalled` and a journal row with the evidence; every
recovery is a Normal Event `FlowRecovered` and a journal row; both are counted in metrics.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.models import FlowState
from collectionflow.api.reasons import ConditionReason, EventReason
from collectionflow.controller.acting import carry_out, database_sync, ensure_ids
from collectionflow.controller.context import flow_logger
from collectionflow.controller.diagnosis import known_of
from collectionflow.controller.outage import note_outage
from collectionflow.controller.ports import Sweeping
from collectionflow.controller.reading import flow_to_act_on, read_attempt
from collectionflow.controller.reconcile import reconcile, recovery_for
from collectionflow.controller.visibility import report_recovered, report_stall
from collectionflow.db.errors import DatabaseUnavailable, UnknownMasterFlow
from collectionflow.domain.decision import Decision, FlowView
from collectionflow.domain.failing import fail_flow
from collectionflow.domain.records import ChildSnapshot
from collectionflow.domain.recovery import RecoveryAction, RecoveryPlan
from collectionflow.domain.stall import (
    Finding,
    find_stall,
    input_reminder_due,
)
from collectionflow.domain.sweep import (
    Known,
    Look,
    QuietFlows,
    SweepRules,
    evidence_of,
    look,
    needs_child,
)
from collectionflow.domain.view import UnreadableFlow, flow_view
from collectionflow.k8s.gateway import ApiUnreachable, Conflict, ObjectRef, api_error_message
from collectionflow.runtime.leaderelection import NotLeader


@dataclass
class SweepMemory:
    """What one pass leaves the next: the quiet flows (`domain.sweep.QuietFlows`), and the
    database's record of each running flow as read at its resourceVersion: only the flow's
    own transitions change that record, and each changes the flow, so a running flow costs
    one database read per change, not one per pass."""

    quiet: QuietFlows = field(default_factory=QuietFlows)
    children: dict[str, tuple[str, ChildSnapshot]] = field(default_factory=dict)

    def keep(self, uids: set[str]) -> None:
        self.quiet.keep(uids)
        for uid in set(self.children) - uids:
            del self.children[uid]

    def remember(self, body: dict[str, Any], view: FlowView, child: ChildSnapshot | None) -> None:
        """Keep a running flow's record for its resourceVersion (a quiet one is not looked at
        again before its recheck, which reads the record afresh)."""
        version = body["metadata"].get("resourceVersion")
        if child is not None and version is not None and view.status.state is FlowState.RUNNING:
            self.children[view.uid] = (version, child)

    def unread(self, bodies: list[dict[str, Any]]) -> tuple[dict[str, ChildSnapshot], list[str]]:
        """The records remembered for these flows at their resourceVersion, and the uids of
        the others."""
        remembered: dict[str, ChildSnapshot] = {}
        unread: list[str] = []
        for body in bodies:
            meta = body["metadata"]
            entry = self.children.get(meta["uid"])
            if entry is not None and entry[0] == meta.get("resourceVersion"):
                remembered[meta["uid"]] = entry[1]
            else:
                unread.append(meta["uid"])
        return remembered, unread


async def sweep(ctx: Sweeping, rules: SweepRules, memory: SweepMemory) -> int:
    """One pass over the active flows in the cache by `rules` (the stall timeouts and the
    recovery budget, made once from the settings); returns how many were checked on fresh
    evidence. Skipped while the database is known to be down: the flows are held by it."""
    if ctx.database.is_down:
        return 0
    checked = 0
    active = ctx.cache.active_flows()
    memory.keep({body["metadata"]["uid"] for body in active})
    now = ctx.clock()
    due = [
        body
        for body in active
        if not body["metadata"].get("deletionTimestamp") and not memory.quiet.skips(body, now)
    ]
    records, unread = memory.unread(due)
    if unread:
        try:
            records.update(await ctx.repository.child_snapshots(unread))
        except DatabaseUnavailable as error:
            note_outage(ctx, error)  # flows held by it say so, though none moved
            return 0
    for body in due:
        try:
            view = flow_view(body, ctx.settings.operator.allow_simulation)
            child = records.get(view.uid)
            memory.remember(body, view, child)
            seen = look(view, _with_child(known_of(ctx, view), view, child), rules, ctx.clock())
            memory.quiet.note(body, view, seen, rules, ctx.clock())
            if seen in (Look.SAY, Look.WAKE):
                ctx.wakeups.wake(view.uid)
            if seen is not Look.CHECK:
                continue
            async with ctx.lock(view.uid):
                # A transition in flight while the evidence was gathered (its database write
                # made, its status patch not yet) looks like drift: judged again once it is
                # done, on the database's record read now.
                current = ctx.cache.flow(view.uid)
                if current is not None:
                    again = flow_view(current, ctx.settings.operator.allow_simulation)
                    known = _with_child(known_of(ctx, again), again, await _child(ctx, again))
                    if look(again, known, rules, ctx.clock()) is not Look.CHECK:
                        continue
                checked += 1
                await check_flow(ctx, rules, view.uid, view.namespace, view.name)
        except (
            DatabaseUnavailable,
            Conflict,
            UnreadableFlow,
            UnknownMasterFlow,
            ApiUnreachable,
        ) as error:
            flow_logger(body["metadata"]["namespace"], body["metadata"]["name"]).warning(
                "stall check postponed: %s", error
            )
        except ApiException as error:
            flow_logger(body["metadata"]["namespace"], body["metadata"]["name"]).warning(
                "stall check postponed: Kubernetes API error %s", api_error_message(error)
            )
        except NotLeader:
            raise
        except Exception:  # one flow must not keep the sweep from every flow after it
            flow_logger(body["metadata"]["namespace"], body["metadata"]["name"]).exception(
                "stall check of this flow failed; the sweep goes on"
            )
    return checked


def _with_child(known: Known, view: FlowView, child: ChildSnapshot | None) -> Known:
    """`known` with the database's record, where that is part of the flow's evidence."""
    return replace(known, child=child) if needs_child(view) else known


async def _child(ctx: Sweeping, view: FlowView) -> ChildSnapshot | None:
    if not needs_child(view):
        return None
    try:
        return await ctx.repository.child_snapshot(view.uid)
    except DatabaseUnavailable as error:
        note_outage(ctx, error)  # flows held by it say so, though none moved
        return None


async def check_flow(
    ctx: Sweeping, rules: SweepRules, uid: str, namespace: str, name: str
) -> Finding | None:
    """Check one flow for a stall on evidence read from the API, and recover it; returns the
    finding (None: not stalled)."""
    found = await flow_to_act_on(ctx, uid, namespace, name, fresh=True)
    if found is None:
        return None
    body, view = found
    ctx.metrics.flow_state(view.uid, view.status.state)
    now = ctx.clock()
    if await _remind_input(ctx, body, view, now):
        return None
    job = lease = None
    pods: list[dict[str, Any]] = []
    current = view.status.current_job
    if view.status.state is FlowState.RUNNING and current:
        job, pods, lease = await read_attempt(
            ctx, uid, namespace, current, fresh=True, evidence=True
        )
    known = Known(
        ctx.excuses(),
        job=job,
        pods=pods,
        lease=lease,
        finished_seen_at=ctx.cache.finished_seen_at(namespace, current or ""),
        child=await _child(ctx, view),
    )
    evidence = evidence_of(view, known, rules, now)
    if evidence is None:
        return None
    finding = find_stall(evidence)
    if finding is None:
        return None
    if finding.reason is ConditionReason.MISSED_COMPLETION:
        await reconcile(ctx, uid, namespace, name)  # reports the stall and advances past it
        return finding
    plan = recovery_for(ctx, view, finding, now)
    log = flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt)
    if plan.action is RecoveryAction.BACK_OFF:
        log.info("stalled (%s), backing off: %s", finding.reason.value, plan.summary)
        return finding
    await report_stall(ctx, view, finding, plan, now)
    await _recover(ctx, body, view, finding, plan)
    return finding


async def _recover(
    ctx: Sweeping,
    body: dict[str, Any],
    view: FlowView,
    finding: Finding,
    plan: RecoveryPlan,
) -> None:
    ids = await ensure_ids(ctx, view)
    ctx.leadership.fence()
    if plan.action is RecoveryAction.RESYNC:
        await ctx.repository.record_transition(database_sync(view, ids, view.status))
    else:
        if plan.delete_job:
            await ctx.kube.delete_job(view.namespace, plan.delete_job)
        assert plan.decision is not None
        await carry_out(ctx, body, view, ids, plan.decision)
    if plan.action is RecoveryAction.FAIL:
        if plan.exhausted:
            ctx.metrics.recoveries_exhausted.inc()
        return
    await report_recovered(ctx, view, finding, plan)


async def _remind_input(
    ctx: Sweeping, body: dict[str, Any], view: FlowView, now: dt.datetime
) -> bool:
    """Remind (or, by setting, fail) a flow that waits too long for input; True if it did."""
    status = view.status
    if not input_reminder_due(
        status.state,
        status.input_requested_at,
        status.last_input_reminder_time,
        now,
        dt.timedelta(seconds=ctx.settings.operator.input_reminder_seconds),
    ):
        return False
    operator = ctx.settings.operator
    status = view.status
    ref = ObjectRef(view.namespace, view.name, view.uid)
    waited = (now - (status.input_requested_at or now)).total_seconds()
    message = f"phase {status.phase} has waited {waited:.0f}s for input"
    ctx.leadership.fence()
    await ctx.kube.post_event(ref, "Normal", EventReason.INPUT_REMINDER, message)
    ids = await ensure_ids(ctx, view)
    if operator.fail_on_input_timeout:
        decision = fail_flow(view, now, ConditionReason.INPUT_TIMEOUT, message)
    else:
        decision = Decision(status=status.model_copy(update={"last_input_reminder_time": now}))
    await carry_out(ctx, body, view, ids, decision)
    return True
