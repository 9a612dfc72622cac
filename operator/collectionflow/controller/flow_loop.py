"""One reconciler task per flow with work, started and stopped from the flow watch.

A task (`runtime.workqueue`) runs while its flow has work: the flow watch starts it and asks it
to stop when the flow comes to rest or goes away; no finalizer (docs/design.md, "Why the
runtime is our own"). A flow deleted while no operator watched it is caught up by the leader
instead (`controller.orphans`).

Errors never end the loop. A database outage is shared: the first reconcile that meets it
marks it down, held flows wait for one probe to see the database answer again and then all
wake at once; each flow reports it once as a `DatabaseUnavailable` Warning Event.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.models import FlowState
from collectionflow.controller.context import flow_logger
from collectionflow.controller.outage import PROBE_SECONDS, database_back, database_down
from collectionflow.controller.ports import Looping
from collectionflow.controller.reconcile import reconcile
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.domain.view import UnreadableFlow
from collectionflow.k8s.gateway import ApiUnreachable, Conflict, api_error_message
from collectionflow.runtime.leaderelection import NotLeader
from collectionflow.runtime.workqueue import ObjectTasks

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


async def run_flow(ctx: Looping, uid: str, namespace: str, name: str, stop: asyncio.Event) -> None:
    """Reconcile the flow whenever it is woken, right after a step that started no Job, and
    after a failure's backoff, until `stop` is set. A flow that waits (for input, suspended,
    or for a Job the cache holds) has no timer: an event or the stall sweep wakes it."""
    wake = ctx.wakeups.register(uid)
    ctx.metrics.reconcilers.inc()
    failures = 0
    fresh = False  # the watch has just delivered the flow; a takeover reads the API
    trigger = "start"
    epoch = ctx.leadership.epoch
    try:
        while not stop.is_set():
            if not ctx.leadership.leading and not await ctx.leadership.wait_leading(stop):
                break
            if epoch != ctx.leadership.epoch:  # taken over: read the truth, as after a start
                epoch, fresh, trigger = ctx.leadership.epoch, True, "leader"
            wake.clear()
            ctx.metrics.reconciles.labels(trigger=trigger).inc()
            delay: float | None = None
            waits_for = wake
            try:
                async with ctx.reconciling, ctx.lock(uid):
                    decision = await reconcile(ctx, uid, namespace, name, fresh=fresh)
                failures = 0
                ctx.apiserver.mark_up(ctx.clock())
                if decision is not None and decision.status is not None and not decision.start:
                    delay = 0.0  # decide again on what was just written
                    trigger = "step"
                else:
                    delay = _resync_after(ctx, uid)
                await database_back(ctx, namespace, name, uid)
                if not ctx.cache.needs_work(uid):
                    break  # at rest (or gone): the watch starts a task again if that changes
            except Conflict:
                ctx.cache.stale_flow(uid)
                delay = 0.0
                trigger = "conflict"
            except DatabaseUnavailable as error:
                waits_for = ctx.database.recovered
                delay = MAX_BACKOFF_SECONDS
                await database_down(ctx, namespace, name, uid, error)
                await asyncio.sleep(PROBE_SECONDS)
            except UnreadableFlow as error:
                flow_logger(namespace, name).error("%s", error)
            except NotLeader:
                delay = 0.0  # wait for the leadership at the top of the loop
            except ApiException as error:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                flow_logger(namespace, name).warning(
                    "Kubernetes API error %s; retrying in %.0fs", api_error_message(error), delay
                )
            except ApiUnreachable as error:
                ctx.apiserver.mark_down(ctx.clock())
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                flow_logger(namespace, name).warning("%s; retrying in %.0fs", error, delay)
            fresh = False
            if delay != 0.0:
                woken = await _sleep_until(waits_for, stop, delay)
                trigger = "event" if woken else "resync"
    finally:
        ctx.metrics.reconcilers.dec()


def _resync_after(ctx: Looping, uid: str) -> float | None:
    """When to decide again with no event: a running flow whose Job no watch has shown yet,
    after `resync_seconds` (from the cache, which reads the API for the Job it lacks). Any
    other flow has no timer (None): the watches wake it, and the stall sweep for what is due."""
    body = ctx.cache.flow(uid)
    status = (body or {}).get("status") or {}
    job = status.get("currentJob")
    if body is None or status.get("state") != FlowState.RUNNING or not job:
        return None
    namespace = body["metadata"]["namespace"]
    if ctx.cache.job(namespace, job) or ctx.inprocess.bodies(namespace, job) is not None:
        return None
    return ctx.settings.operator.resync_seconds


async def _sleep_until(event: asyncio.Event, stop: asyncio.Event, delay: float | None) -> bool:
    """Wait for `event`, `stop`, or `delay` (None: no timer); True unless the delay ran out."""
    waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    try:
        done, _ = await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


def flow_tasks(ctx: Looping) -> ObjectTasks:
    """One reconciler task per flow with work (`run_flow`)."""
    return ObjectTasks(ctx.wakeups, ctx.forget, functools.partial(run_flow, ctx))
