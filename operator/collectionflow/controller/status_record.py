"""Only the operator writes a flow's status: a status someone else wrote is put back.

The watch cache keeps the status as the operator last wrote it (or, after a start, as first
seen) and notices a status event that is not the operator's own write and differs from it
(`WatchCache.status_record`), even on a flow at rest. The flow's reconciler then writes the
record back before it decides anything, with a Warning Event `StatusOverwritten` naming the
fields. The database agrees with the record: a running flow whose status disagrees with the
database after an operator restart is the stall sweep's `DatabaseDrift`.
"""

from __future__ import annotations

from typing import Any

from collectionflow.api.reasons import EventReason
from collectionflow.controller.context import flow_logger
from collectionflow.controller.ports import StatusRestoring
from collectionflow.k8s.gateway import ObjectRef
from collectionflow.specs.patches import merge_patch


async def restore_status(
    ctx: StatusRestoring, body: dict[str, Any], record: dict[str, Any]
) -> dict[str, Any]:
    """Someone other than the operator wrote the flow's status: put the operator's record back
    (the decisions go by it, the database agrees with it), saying which fields were changed."""
    meta = body["metadata"]
    observed = body.get("status") or {}
    changed = sorted(key for key in {*observed, *record} if observed.get(key) != record.get(key))
    if not changed:
        ctx.cache.status_restored(meta["uid"])
        return body
    ctx.leadership.fence()
    written = await ctx.kube.patch_flow_status(body, merge_patch(observed, record))
    ctx.cache.wrote_flow(written)  # the record again, and no longer someone else's
    ctx.metrics.status_overwritten.inc()
    message = (
        f"status fields {', '.join(changed)} were written by someone other than the operator; "
        "put back from the operator's record (only the operator writes a flow's status)"
    )
    flow_logger(meta["namespace"], meta["name"]).warning("%s", message)
    await ctx.kube.post_event(
        ObjectRef(meta["namespace"], meta["name"], meta["uid"]),
        "Warning",
        EventReason.STATUS_OVERWRITTEN,
        message,
    )
    return written
