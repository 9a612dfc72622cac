"""What the controller reads of a flow and of its current attempt: from the watch cache, or
from the API when the cache lacks it or a fresh read is asked for. The reconcile reads the Job
(and its pods once it ended); the stall check reads everything from the API (`evidence`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from collectionflow.api.models import FlowState
from collectionflow.controller.ports import Reading
from collectionflow.controller.status_record import restore_status
from collectionflow.domain.decision import (
    FlowView,
    JobObservation,
)
from collectionflow.domain.observe import job_finished_at, observe_job, terminated_state
from collectionflow.domain.view import flow_view


async def read_flow(
    ctx: Reading, uid: str, namespace: str, name: str, fresh: bool
) -> dict[str, Any] | None:
    """The flow from the cache, or from the API when the cache lacks it or `fresh` is asked."""
    body = None if fresh else ctx.cache.flow(uid)
    if body is not None:
        return body
    read = await ctx.kube.get_flow(namespace, name)
    if read is None:
        ctx.cache.forget_flow(uid)
        return None
    ctx.cache.refresh_flow(read)
    return ctx.cache.flow(uid)


async def flow_to_act_on(
    ctx: Reading, uid: str, namespace: str, name: str, fresh: bool
) -> tuple[dict[str, Any], FlowView] | None:
    """The flow and its view, its status put back first when someone else wrote another
    (`controller.status_record`); None when it is gone or being deleted."""
    body = await read_flow(ctx, uid, namespace, name, fresh)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    record = ctx.cache.status_record(uid)
    if record is not None:
        body = await restore_status(ctx, body, record)
    return body, flow_view(body, ctx.settings.operator.allow_simulation)


async def read_attempt(
    ctx: Reading, uid: str, namespace: str, name: str, *, fresh: bool, evidence: bool
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    """The attempt's Job, pods and (with `evidence`) heartbeat Lease. An in-process attempt's
    are this process's own. With `evidence` all three come from the API and the Job's end, if
    the cache learns of it now, wakes the flow `uid`; otherwise the cache serves what it holds
    (unless `fresh`) and the pods are read only once the Job has ended."""
    known = ctx.inprocess.bodies(namespace, name)
    if known is not None:
        return known[0], known[1], ctx.cache.lease(namespace, name)
    if evidence:
        job = await ctx.kube.get_job(namespace, name)
        if ctx.cache.put_job(job, namespace, name):  # ended just now: the flow acts on it
            ctx.wakeups.wake(uid)
        read = await ctx.kube.list_job_pods(namespace, name) if job else []
        ctx.cache.put_pods(namespace, name, read)
        lease = await ctx.kube.get_lease(namespace, name) if job else None
        return job, read, lease
    job = None if fresh else ctx.cache.job(namespace, name)
    if job is None:
        job = await ctx.kube.get_job(namespace, name)
        ctx.cache.put_job(job, namespace, name)
    pods: list[dict[str, Any]] = []
    if job is not None and job["status"].get("conditions"):
        cached = None if fresh else ctx.cache.job_pods(namespace, name)
        if cached is None or not any(terminated_state(pod) for pod in cached):
            cached = await ctx.kube.list_job_pods(namespace, name)
            ctx.cache.put_pods(namespace, name, cached)
        pods = cached
    return job, pods, None


async def observe_current_job(
    ctx: Reading, view: FlowView, fresh: bool = False
) -> tuple[JobObservation | None, dt.datetime | None]:
    """The current attempt's Job as observed, and when it finished (if it did)."""
    status = view.status
    if status.state is not FlowState.RUNNING or not status.current_job:
        return None, None
    name = status.current_job
    job, pods, _ = await read_attempt(
        ctx, view.uid, view.namespace, name, fresh=fresh, evidence=False
    )
    return observe_job(name, job, pods), job_finished_at(job)
