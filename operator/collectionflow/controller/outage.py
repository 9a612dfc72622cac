"""A database outage, shared by every flow: the first to meet it marks it down and starts the
one probe; every flow not at rest says in its status that the database holds it (reason
`Waiting`), and reports it once as a `DatabaseUnavailable` Warning Event; when the probe sees
the database answer, every held flow wakes, takes the word back and catches up."""

from __future__ import annotations

import asyncio
import logging

from collectionflow.api.models import FlowState
from collectionflow.api.reasons import EventReason
from collectionflow.controller.acting import carry_out
from collectionflow.controller.context import flow_logger
from collectionflow.controller.diagnosis import diagnosis_of
from collectionflow.controller.ports import Holding
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.domain.decision import Decision
from collectionflow.domain.diagnosis import waiting_status
from collectionflow.domain.journal import outage_entry
from collectionflow.domain.view import flow_view
from collectionflow.k8s.gateway import ObjectRef

log = logging.getLogger(__name__)
PROBE_SECONDS = 1.0


def note_outage(ctx: Holding, error: Exception) -> None:
    """Mark the database down; the first to notice starts the one probe and wakes every flow,
    so each says that the database holds it."""
    if ctx.database.mark_down(ctx.clock()):
        log.warning("database unavailable (%s); holding flows until it answers", error)
        ctx.tasks.add(asyncio.create_task(_probe_database(ctx), name="database-probe"))
        ctx.wakeups.wake_all()


async def database_down(
    ctx: Holding, namespace: str, name: str, uid: str, error: Exception
) -> None:
    """The flow met the outage: its Event (once) and its status say the database holds it."""
    note_outage(ctx, error)
    if uid not in ctx.database_down:
        ctx.database_down[uid] = ctx.clock()
        flow_logger(namespace, name).warning("database unavailable; flow held: %s", error)
        await ctx.kube.post_event(
            ObjectRef(namespace, name, uid),
            "Warning",
            EventReason.DATABASE_UNAVAILABLE,
            f"database unavailable, flow held until it returns: {error}",
        )
    async with ctx.lock(uid):
        await _say_held(ctx, uid)


async def database_back(ctx: Holding, namespace: str, name: str, uid: str) -> None:
    """The flow that met the outage caught up: its Event, and a journal row of how long the
    database held it."""
    since = ctx.database_down.pop(uid, None)
    if since is None:
        return
    await ctx.kube.post_event(
        ObjectRef(namespace, name, uid),
        "Normal",
        EventReason.DATABASE_RECOVERED,
        "database reachable again; caught up",
    )
    body = ctx.cache.flow(uid)
    status = flow_view(body, ctx.settings.operator.allow_simulation).status if body else None
    await ctx.repository.journal(outage_entry(uid, status, since, ctx.clock()))


async def _say_held(ctx: Holding, uid: str) -> None:
    """Write the Waiting status of a running flow held by the outage; no database needed."""
    body = ctx.cache.flow(uid)
    if body is None or not ctx.database.is_down:
        return
    view = flow_view(body, ctx.settings.operator.allow_simulation)
    if view.status.state is not FlowState.RUNNING:
        return
    now = ctx.clock()
    diagnosis = diagnosis_of(ctx, view, now)
    waiting = waiting_status(view, diagnosis, now) if diagnosis else None
    if waiting is not None:
        await carry_out(ctx, body, view, None, Decision(status=waiting))


async def _probe_database(ctx: Holding) -> None:
    """Ask the database every second until it answers, then wake every held flow."""
    current = asyncio.current_task()
    try:
        while ctx.database.is_down:
            try:
                await ctx.repository.ping()
            except DatabaseUnavailable:
                await asyncio.sleep(PROBE_SECONDS)
                continue
            ctx.database.mark_up(ctx.clock())
            log.info("database reachable again; waking every held flow")
            ctx.wakeups.wake_all()
    finally:
        if current is not None:
            ctx.tasks.discard(current)
