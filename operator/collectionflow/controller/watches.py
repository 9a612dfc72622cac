"""The watches of flows (`controller.flows`), phase Jobs, their finished pods and heartbeat
Leases, feeding the watch cache.

They are `runtime.informer` loops, not kopf handlers (docs/design.md, "Why the runtime is our
own").

Filtered on the server: our managed-by label, and for pods, the ones that ended (their
termination message is the phase's result; a worker's start shows as its heartbeat Lease). A
pod that has not ended is never watched: the pods of a Job not seen to start are read
(`controller.pod_starts`).
A re-list replaces what the cache knew: a Job that disappeared while the watch was away is
forgotten with its pods and Lease.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from collectionflow.api.limits import InputKind
from collectionflow.api.models import GROUP, PLURAL, VERSION
from collectionflow.api.names import LABEL_FLOW_UID, LABEL_MANAGED_BY, MANAGED_BY
from collectionflow.controller.flows import FlowWatch
from collectionflow.controller.ports import Observing, Watching
from collectionflow.domain.cache import WatchCache
from collectionflow.domain.slim import object_key
from collectionflow.runtime.informer import LISTED, SYNCED, Lister, WatchEvent, follow
from collectionflow.runtime.workqueue import ObjectTasks

log = logging.getLogger(__name__)

MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
FINISHED_PODS = "status.phase!=Pending,status.phase!=Running"

Take = Callable[[WatchEvent], None]


def start_watches(
    ctx: Watching, reconcilers: ObjectTasks, namespaces: Iterable[str]
) -> list[asyncio.Task[None]]:
    """One task per resource (and per namespace, unless cluster-wide: no namespaces)."""
    kube = ctx.kube
    tasks = []

    def skipped(_: WatchEvent) -> None:
        ctx.metrics.rejected_inputs.labels(kind=InputKind.WATCH_EVENT.value).inc()

    relist = ctx.settings.operator.relist_seconds
    # Each resource's lister in one namespace and across all of them.
    flows = (
        functools.partial(kube.custom.list_namespaced_custom_object, GROUP, VERSION),
        functools.partial(kube.custom.list_cluster_custom_object, GROUP, VERSION),
    )
    jobs = (kube.batch.list_namespaced_job, kube.batch.list_job_for_all_namespaces)
    pods = (kube.core.list_namespaced_pod, kube.core.list_pod_for_all_namespaces)
    leases = (
        kube.coordination.list_namespaced_lease,
        kube.coordination.list_lease_for_all_namespaces,
    )
    finished_pods = {"label_selector": MANAGED, "field_selector": FINISHED_PODS}
    scopes: list[str | None] = list(namespaces) or [None]
    for namespace in scopes:
        scope = (namespace,) if namespace else ()
        watches: list[tuple[str, tuple[Lister, Lister], dict[str, Any], Take]] = [
            ("flows", flows, {"plural": PLURAL}, FlowWatch(ctx, reconcilers).take),
            ("jobs", jobs, {"label_selector": MANAGED}, _JobWatch(ctx, namespace).take),
            ("pods", pods, finished_pods, lambda event: _take_pod(ctx.cache, event)),
            ("leases", leases, {"label_selector": MANAGED}, lambda e: _take_lease(ctx.cache, e)),
        ]
        for resource, (namespaced, cluster_wide), selectors, take in watches:
            lister = namespaced if namespace else cluster_wide
            task = asyncio.create_task(
                follow(lister, scope, selectors, take, skipped, relist, ctx.metrics.watch_event),
                name=f"watch-{resource}-{namespace or 'all'}",
            )
            tasks.append(task)
    return tasks


class _JobWatch:
    """Jobs: a condition coming or going wakes the flow; a re-list forgets the Jobs it lacks."""

    def __init__(self, ctx: Observing, namespace: str | None) -> None:
        self.ctx = ctx
        self.namespace = namespace
        self.listed: set[tuple[str, str]] = set()

    def take(self, event: WatchEvent) -> None:
        ctx = self.ctx
        if event.type == SYNCED:
            ctx.cache.keep_jobs(self.listed, self.namespace)
            self.listed = set()
            return
        ctx.metrics.watch_event()
        if event.type == LISTED:
            self.listed.add(object_key(event.body))
        kind = None if event.type == LISTED else event.type
        if ctx.cache.observe_job(kind, event.body, ctx.clock()):
            flow_uid = (event.body["metadata"].get("labels") or {}).get(LABEL_FLOW_UID)
            if flow_uid:
                ctx.wakeups.wake(flow_uid)


def _take_pod(cache: WatchCache, event: WatchEvent) -> None:
    if event.type != SYNCED:
        cache.observe_pod(None if event.type == LISTED else event.type, event.body)


def _take_lease(cache: WatchCache, event: WatchEvent) -> None:
    if event.type != SYNCED:
        cache.observe_lease(None if event.type == LISTED else event.type, event.body)
