"""Database rows of flows deleted while no operator watched them.

The leader marks a flow's rows cancelled when its watch sees the flow deleted. A flow deleted
while the operator was down, or while no replica led, leaves no such event, and flows hold no
finalizer to wait for one. So each time a replica takes the lead (once at start without
election) it compares the flows the database has not cancelled with the flows in the cluster,
and marks the missing ones cancelled. The database is read first: a flow created after that
read is not in it, so only a flow that was in the cluster and is gone counts as deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.controller.ports import OrphanSweeping
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.k8s.gateway import ApiUnreachable, api_error_message
from collectionflow.runtime.leaderelection import NotLeader

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0
LEADERSHIP_POLL_SECONDS = 5.0


async def cancel_orphans(ctx: OrphanSweeping, namespaces: Sequence[str]) -> set[str]:
    """Mark cancelled the rows of every flow the database has and the cluster has not; returns
    their uids. `namespaces` empty means every namespace."""
    known = await ctx.repository.uncancelled_flow_uids(namespaces)
    if not known:
        return set()
    present: set[str] = set()
    for namespace in namespaces or (None,):
        present |= await ctx.kube.flow_uids(namespace)
    gone = known - present
    for uid in sorted(gone):
        ctx.leadership.fence()
        await ctx.repository.mark_cancelled(uid)
        log.info("flow %s was deleted while unwatched; database rows marked cancelled", uid)
    return gone


async def cancel_orphans_on_lead(ctx: OrphanSweeping, namespaces: Sequence[str]) -> None:
    """Run `cancel_orphans` once per term of leadership, retrying until it succeeds."""
    swept = 0  # the leadership epoch last swept
    failures = 0
    while True:
        if ctx.leadership.leading and ctx.leadership.epoch != swept:
            epoch = ctx.leadership.epoch
            try:
                await cancel_orphans(ctx, namespaces)
            except NotLeader:
                continue
            except (DatabaseUnavailable, ApiException, ApiUnreachable) as error:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                reason = api_error_message(error) if isinstance(error, ApiException) else error
                log.warning("deleted-flow sweep failed (%s); retrying in %.0fs", reason, delay)
                await asyncio.sleep(delay)
                continue
            swept, failures = epoch, 0
        changed = asyncio.ensure_future(ctx.leadership.changed.wait())
        try:
            await asyncio.wait({changed}, timeout=LEADERSHIP_POLL_SECONDS)
        finally:
            changed.cancel()
