"""The reads of the pods of Jobs not seen to start (`domain.pod_starts`): what holds a pod
(an image, the scheduler, a missing Secret key) wakes its flow, whose status then says so.

This replaces a standing watch of Pending pods, which every pod passed through with three or
four events; now only a pod that has not started a few seconds after its Job costs a share of
a read: the Jobs due together are read in one request per namespace, served by the
apiserver's watch cache (a read from etcd goes over every pod of the namespace). Only the
leader reads: a standby's flows are not acted on.
"""

from __future__ import annotations

import asyncio
import logging

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.controller.ports import StartReading
from collectionflow.domain.pod_starts import batches, pods_by_job
from collectionflow.k8s.gateway import ApiUnreachable, api_error_message

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# At most this many Jobs a tick, so an operator that starts among thousands of running Jobs
# (their Leases not listed yet) spreads its reads.
JOBS_PER_TICK = 200


async def read_unstarted(ctx: StartReading) -> int:
    """Read the pods of the Jobs due (`WatchCache.unstarted`), waking each flow whose pods
    changed what holds them; returns how many Jobs were read."""
    due = ctx.cache.unstarted.due(ctx.clock(), JOBS_PER_TICK)
    for namespace, names in batches(due):
        try:
            pods = await ctx.kube.list_pods_of_jobs(namespace, names)
        except (ApiUnreachable, ApiException) as error:
            message = api_error_message(error) if isinstance(error, ApiException) else error
            log.warning("pods of %d Jobs in %s not read: %s", len(names), namespace, message)
            for name in names:
                ctx.cache.unstarted.read((namespace, name), ctx.clock())  # again later
            continue
        by_job = pods_by_job(pods)
        for name in names:
            flow_uid = ctx.cache.pods_read(namespace, name, by_job.get(name, []), ctx.clock())
            if flow_uid:
                ctx.wakeups.wake(flow_uid)
    return len(due)


async def read_unstarted_forever(ctx: StartReading) -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)
        if not ctx.leadership.leading:
            continue
        try:
            await read_unstarted(ctx)
        except Exception:  # the reads must outlive any one bad tick
            log.exception("reading the pods of unstarted Jobs failed; next tick in 1s")
