"""The watch of flows: it feeds the cache and the state metric, and starts and stops the
reconciler tasks.

A `runtime.informer` loop like the other watches (docs/design.md, "Why the runtime is our
own"). A deleted flow's rows are marked cancelled,
retried until the database answers; a re-list treats the flows it lacks as deleted, so a flow
deleted while the watch was away is not missed. Earlier versions ran each flow in a kopf
daemon, which holds a finalizer; the leader takes that finalizer off any flow still carrying
it, or the flow could never be deleted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.models import GROUP
from collectionflow.controller.context import flow_logger
from collectionflow.controller.outage import PROBE_SECONDS, note_outage
from collectionflow.controller.ports import Watching
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.domain.cache import DELETED
from collectionflow.domain.view import observed_state
from collectionflow.k8s.gateway import ApiUnreachable, api_error_message
from collectionflow.runtime.informer import LISTED, SYNCED, WatchEvent
from collectionflow.runtime.leaderelection import NotLeader
from collectionflow.runtime.workqueue import ObjectTasks

LEGACY_FINALIZER = f"{GROUP}/finalizer"


class FlowWatch:
    """The events of one watch of flows (one namespace, or all)."""

    def __init__(self, ctx: Watching, reconcilers: ObjectTasks) -> None:
        self.ctx = ctx
        self.reconcilers = reconcilers
        self.known: dict[str, tuple[str, str]] = {}  # uid: (namespace, name)
        self.listed: set[str] = set()
        self.unfinalizing: set[str] = set()

    def take(self, event: WatchEvent) -> None:
        if event.type == SYNCED:
            for uid in set(self.known) - self.listed:
                namespace, name = self.known[uid]
                self._changed(DELETED, {"metadata": {"uid": uid}}, uid, namespace, name)
            self.listed = set()
            return
        meta = event.body["metadata"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        kind = None if event.type == LISTED else event.type
        if kind is None:
            self.listed.add(uid)
        self._changed(kind, event.body, uid, namespace, name)

    def _changed(
        self, kind: str | None, body: dict[str, Any], uid: str, namespace: str, name: str
    ) -> None:
        ctx = self.ctx
        ctx.metrics.watch_event()
        gone = kind == DELETED
        ctx.metrics.flow_state(uid, None if gone else observed_state(body))
        if ctx.cache.observe_flow(kind, body):
            ctx.wakeups.wake(uid)
        meta = body["metadata"]
        working = not gone and not meta.get("deletionTimestamp") and ctx.cache.needs_work(uid)
        self.reconcilers.observe(uid, namespace, name, working)
        if gone:
            self.known.pop(uid, None)
            if ctx.leadership.leading:
                self._spawn(_cancel_rows(ctx, namespace, name, uid))
            return
        self.known[uid] = (namespace, name)
        legacy = LEGACY_FINALIZER in (meta.get("finalizers") or [])
        if legacy and ctx.leadership.leading and uid not in self.unfinalizing:
            self.unfinalizing.add(uid)
            self._spawn(self._unfinalize(namespace, name, uid, meta))

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.ctx.tasks.add(task)
        task.add_done_callback(self.ctx.tasks.discard)

    async def _unfinalize(self, namespace: str, name: str, uid: str, meta: dict[str, Any]) -> None:
        """Take the legacy finalizer off; on any failure the flow's next event tries again."""
        kept = [f for f in meta.get("finalizers") or [] if f != LEGACY_FINALIZER]
        try:
            self.ctx.leadership.fence()
            await self.ctx.kube.set_flow_finalizers(namespace, name, kept, meta["resourceVersion"])
            flow_logger(namespace, name).info("removed the finalizer %s", LEGACY_FINALIZER)
        except (ApiException, ApiUnreachable, NotLeader) as error:
            reason = api_error_message(error) if isinstance(error, ApiException) else error
            flow_logger(namespace, name).info("finalizer not removed yet: %s", reason)
        finally:
            self.unfinalizing.discard(uid)


async def _cancel_rows(ctx: Watching, namespace: str, name: str, uid: str) -> None:
    """A deleted flow's Jobs go with it (owner references); its database rows are marked
    cancelled, retried until the database answers."""
    while True:
        try:
            await ctx.repository.mark_cancelled(uid)
        except DatabaseUnavailable as error:
            note_outage(ctx, error)
            await ctx.database.recovered.wait()
            await asyncio.sleep(PROBE_SECONDS)
            continue
        flow_logger(namespace, name).info("flow deleted; database rows marked cancelled")
        return
