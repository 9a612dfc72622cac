"""`collectionflow why NAME`: why a flow is not moving, what the operator does next, and when.

The same diagnosis the operator writes to the flow's status (`domain.diagnosis`), computed here
from what the API holds: the flow, its current Job, that Job's pods and its heartbeat Lease,
read through the user's kubeconfig. The timeouts are this machine's `COLLECTIONFLOW_OPERATOR__*`
settings, or the operator's defaults; a flow's own spec overrides them, as in the operator.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from typing import Any

from collectionflow.api.models import FlowState, RecoveryPolicy
from collectionflow.cli.tables import width
from collectionflow.domain.diagnosis import (
    Diagnosis,
    Recoveries,
    clock,
    diagnose,
    held_by_database,
)
from collectionflow.domain.evidence import Timeouts, evidence_for
from collectionflow.domain.observe import heartbeat_seconds_of
from collectionflow.domain.plan import InvalidSpec
from collectionflow.domain.view import flow_view
from collectionflow.k8s.flows_client import FlowsClient
from collectionflow.runtime.lease import no_leader, read_lease
from collectionflow.settings import get_settings


def diagnosis_from_api(kube: FlowsClient, flow: dict[str, Any], now: dt.datetime) -> Diagnosis:
    settings = get_settings().operator  # this machine's COLLECTIONFLOW_OPERATOR__*
    view = flow_view(flow, allow_simulation=True)
    status = view.status
    job = pods = lease = None
    if status.current_job:
        job, pods, lease = kube.attempt(view.namespace, status.current_job)
    try:
        plan = view.plan
    except InvalidSpec as error:
        return Diagnosis.invalid(str(error))
    timeouts = Timeouts(
        settings.stall_timeout_seconds,
        settings.pod_start_timeout_seconds,
        settings.missed_completion_grace_seconds,
        heartbeat_seconds_of(job) or settings.heartbeat_seconds,
    )
    evidence = evidence_for(view, plan, now, timeouts, job, pods or [], lease, True)
    limit = view.spec.max_recoveries
    asked = status.last_input_reminder_time or status.input_requested_at
    return diagnose(
        evidence,
        Recoveries(
            view.spec.recovery_policy or RecoveryPolicy.RETRY_PHASE,
            status.recoveries,
            limit if limit is not None else settings.max_recoveries,
        ),
        input_requested_at=status.input_requested_at,
        database_held=held_by_database(status),
        reminder_at=asked + dt.timedelta(seconds=settings.input_reminder_seconds)
        if asked
        else None,
    )


def operator_state(kube: FlowsClient, now: dt.datetime, namespace: str | None) -> str | None:
    """Whether an operator leads, from its leader Lease (in `namespace`, else this machine's
    `COLLECTIONFLOW_LEADER__LEASE_NAMESPACE`); None when one does or no Lease is found."""
    leader = get_settings().leader
    where = namespace or leader.lease_namespace
    body = kube.lease(where, leader.lease_name)
    if body is None:
        return None
    return no_leader(read_lease(body), f"{where}/{leader.lease_name}", now)


def _ago(moment: dt.datetime, now: dt.datetime) -> str:
    seconds = (now - moment).total_seconds()
    return f"{abs(seconds):.0f}s {'ago' if seconds >= 0 else 'from now'}"


def why_text(
    flow: dict[str, Any], diagnosis: Diagnosis, now: dt.datetime, operator: str | None = None
) -> str:
    """The diagnosis for people, within the terminal's width."""
    meta, status = flow["metadata"], flow.get("status") or {}
    where = status.get("state", FlowState.PENDING)
    if status.get("phase"):
        where += f", phase {status['phase']} attempt {status.get('attempt', 0)}"
    since = diagnosis.since
    rows = [
        ("Flow:", f"{meta['namespace']}/{meta['name']} ({where})"),
        (
            "Waits for:",
            diagnosis.waits_for.value
            + (f" (since {clock(since)}, {_ago(since, now)})" if since else ""),
        ),
        ("Why:", diagnosis.summary),
    ]
    if diagnosis.next_action:
        when = f" ({_ago(diagnosis.next_at, now)})" if diagnosis.next_at else ""
        rows.append(("Next:", diagnosis.next_action + when))
    eta = status.get("estimatedCompletionTime")
    if eta:
        moment = dt.datetime.fromisoformat(str(eta).replace("Z", "+00:00"))
        rows.append(("ETA:", f"{clock(moment)} ({_ago(moment, now)})"))
    rows += [
        ("Evidence:", f"{key}: {value}")
        for key, value in diagnosis.evidence.items()
        if value not in (None, [], "")
    ]
    if operator:
        rows.insert(1, ("Operator:", operator))
    if status.get("message"):
        rows.append(("Status:", status["message"]))
    return "\n".join(
        textwrap.fill(
            text,
            width(),
            initial_indent=f"{label:<12}",
            subsequent_indent=" " * 12,
            break_long_words=True,
        )
        for label, text in rows
    )
