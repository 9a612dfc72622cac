"""Starting a phase attempt where it can run: its Job, or the operator's own process.

`Auto` (the default) creates the Job. When that is refused for good (`domain.runner.verdict`)
the attempt runs in-process instead, with a Warning Event `FallbackRunner` that says why and a
journal row; a quota is waited out for `quota_grace_seconds` first. A flow whose runner is
`Job` fails with the API's reason instead (`JobRefused`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.models import Runner
from collectionflow.api.reasons import EventReason
from collectionflow.controller.context import JobDeferred, JobRefused, flow_logger
from collectionflow.controller.ports import Launching
from collectionflow.domain.decision import FlowView
from collectionflow.domain.journal import fallback_entry
from collectionflow.domain.runner import Refusal, Verdict, runner_for, verdict
from collectionflow.domain.slim import finished
from collectionflow.k8s.gateway import ObjectRef, api_error_message


async def launch(
    ctx: Launching,
    view: FlowView,
    manifest: dict[str, Any],
    now: dt.datetime,
    built_in: bool,
) -> Runner:
    """Start the attempt that `manifest` describes; where it runs. `built_in`: the phase is
    the operator's own worker (no image, command or arguments of the flow's)."""
    settings = ctx.settings.operator
    runner = runner_for(view.spec.runner, settings.runner, built_in)
    if runner is Runner.IN_PROCESS:
        ctx.leadership.fence()
        ctx.inprocess.start(manifest, view.uid, now)
        return Runner.IN_PROCESS
    if settings.manage_worker_rbac:
        await ctx.kube.ensure_worker_rbac(
            view.namespace, settings.worker_service_account, settings.worker_cluster_role
        )
    ctx.leadership.fence()
    name = manifest["metadata"]["name"]
    try:
        job = await ctx.kube.create_job(manifest)
    except ApiException as error:
        refusal = Refusal(error.status or 0, api_error_message(error))
        since = ctx.refusals.setdefault((view.namespace, name), now)
        grace = dt.timedelta(seconds=settings.quota_grace_seconds)
        outcome = verdict(runner, refusal, since, now, grace)
        if outcome is Verdict.WAIT:
            if refusal.quota and since == now:
                message = await _report_quota(ctx, view, name, refusal, runner, since + grace)
                raise JobDeferred(message, error) from None
            raise
        if outcome is Verdict.REFUSED:
            if not built_in and settings.runner is not Runner.JOB:
                raise JobRefused(
                    f"{refusal.message}; the phase has its own image, command or arguments, "
                    "which never run in the operator's process"
                ) from None
            raise JobRefused(refusal.message) from None
        await _report_fallback(ctx, view, name, refusal)
        ctx.inprocess.start(manifest, view.uid, now)
        return Runner.IN_PROCESS
    ctx.refusals.pop((view.namespace, name), None)
    ctx.cache.put_job(job, view.namespace, name)
    cached = ctx.cache.job(view.namespace, name)
    if cached is not None and finished(cached):  # adopted (409), and it already ended
        ctx.wakeups.wake(view.uid)
    return Runner.JOB


async def _report_quota(
    ctx: Launching,
    view: FlowView,
    job_name: str,
    refusal: Refusal,
    runner: Runner,
    until: dt.datetime,
) -> str:
    """A quota refused the attempt's Job: say so once, with what happens and when; returns
    what was said."""
    then = (
        "the flow fails with JobRefused"
        if runner is Runner.JOB
        else "the phase runs in the operator's process"
    )
    message = (
        f"creating {job_name} was refused ({refusal.message}); retried until "
        f"{until.astimezone(dt.UTC):%H:%M:%S}Z (quotaGraceSeconds), then {then}"
    )
    flow_logger(view.namespace, view.name, view.status.phase, view.status.attempt).warning(
        "%s", message
    )
    await ctx.kube.post_event(
        ObjectRef(view.namespace, view.name, view.uid), "Warning", EventReason.JOB_DEFERRED, message
    )
    return message


async def _report_fallback(ctx: Launching, view: FlowView, job_name: str, refusal: Refusal) -> None:
    status = view.status
    message = (
        f"{job_name} runs in the operator's process: creating its Job was refused "
        f"({refusal.message})"
    )
    if ctx.inprocess.queued:
        message += f"; {ctx.inprocess.queued} in-process phases wait before it"
    flow_logger(view.namespace, view.name, status.phase, status.attempt).warning("%s", message)
    await ctx.kube.post_event(
        ObjectRef(view.namespace, view.name, view.uid),
        "Warning",
        EventReason.FALLBACK_RUNNER,
        message,
    )
    await ctx.repository.journal(fallback_entry(view, job_name, message, refusal.status))
