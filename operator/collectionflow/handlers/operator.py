"""kopf registrations. Thin on purpose: each handler hands its work to a plain function.

Each flow gets a daemon that reconciles it whenever something relevant happens (its own
watch events, or watch events of its Jobs, which wake it) and at a slow resync interval as
a safety net. Errors never end the loop: a database outage is retried with backoff and
reported once per outage as a `DatabaseUnavailable` Warning Event on the flow.

A timer per flow checks it for stalls on evidence (heartbeats, Jobs, pods, the database),
never on kopf's `idle=`, which the operator's own status writes would keep resetting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from collectionflow.api.models import GROUP, PLURAL, VERSION
from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.db.migrate import upgrade
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.view import UnreadableFlow, has_work, observed_state
from collectionflow.handlers.context import OperatorContext, flow_logger
from collectionflow.handlers.reconcile import reconcile
from collectionflow.handlers.stall import check_flow
from collectionflow.k8s.gateway import (
    Conflict,
    KubeGateway,
    ObjectRef,
    api_error_message,
    load_api_client,
)
from collectionflow.metrics import Metrics
from collectionflow.settings import get_settings
from collectionflow.specs.names import LABEL_FLOW_UID, LABEL_MANAGED_BY, MANAGED_BY

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.WARNING
    # Without these a watch can go quiet for hours and handlers stop firing (kopf #585, #955).
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60

    app = get_settings()
    url = app.db.resolved_url()
    try:
        await upgrade(url)
    except DatabaseUnavailable as error:
        raise kopf.TemporaryError(f"database unavailable at startup: {error}", delay=5) from error
    engine = make_engine(app.db)
    metrics = Metrics()
    if app.operator.metrics_port:
        metrics.serve(app.operator.metrics_port)
    memo.ctx = OperatorContext(
        metrics=metrics,
        settings=app,
        kube=KubeGateway(load_api_client()),
        repository=FlowRepository(make_sessionmaker(engine)),
        engine=engine,
    )
    log.info("operator ready: database %s", engine.url.render_as_string(hide_password=True))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    ctx: OperatorContext | None = getattr(memo, "ctx", None)
    if ctx is not None:
        await ctx.engine.dispose()
        ctx.kube.api_client.close()


def _has_work(body: kopf.Body, **_: Any) -> bool:
    """kopf starts a flow's reconciler and stall check while this holds and stops them when it
    no longer does, so flows at rest cost no task, no timer and no API reads."""
    return has_work(dict(body))


# A daemon is stopped when its flow comes to rest, which its own status write announces while
# it still posts that step's Events: it is asked to stop (the loop checks `stopped`) and only
# cancelled if it has not finished its step after the backoff.
@kopf.daemon(
    GROUP,
    VERSION,
    PLURAL,
    when=_has_work,
    cancellation_backoff=10.0,
    cancellation_timeout=5.0,
)
async def run_flow(
    name: str, namespace: str | None, uid: str, stopped: kopf.DaemonStopped, memo: Any, **_: Any
) -> None:
    assert namespace is not None, "CollectionFlow is namespaced"
    ctx: OperatorContext = memo.ctx
    wake = ctx.wakeups.register(uid)
    ctx.metrics.reconcilers.inc()
    failures = 0
    try:
        while not stopped:
            wake.clear()
            delay = ctx.settings.operator.resync_seconds
            try:
                async with ctx.lock(uid):
                    await reconcile(ctx, namespace, name)
                failures = 0
                await _database_back(ctx, namespace, name, uid)
            except Conflict:
                delay = 0.0
            except DatabaseUnavailable as error:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                await _database_down(ctx, namespace, name, uid, error, delay)
            except UnreadableFlow as error:
                delay = ctx.settings.operator.resync_seconds
                flow_logger(namespace, name).error("%s", error)
            except ApiException as error:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0**failures)
                flow_logger(namespace, name).warning(
                    "Kubernetes API error %s; retrying in %.0fs", api_error_message(error), delay
                )
            if delay:
                await _sleep_until_woken(wake, stopped, delay)
    finally:
        ctx.metrics.reconcilers.dec()
        ctx.forget(uid)


async def _sleep_until_woken(
    wake: asyncio.Event, stopped: kopf.DaemonStopped, delay: float
) -> None:
    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _database_down(
    ctx: OperatorContext, namespace: str, name: str, uid: str, error: Exception, delay: float
) -> None:
    flow_logger(namespace, name).warning(
        "database unavailable (%s); retrying in %.0fs", error, delay
    )
    if uid not in ctx.database_down:
        ctx.database_down.add(uid)
        await ctx.kube.post_event(
            ObjectRef(namespace, name, uid),
            "Warning",
            "DatabaseUnavailable",
            f"database unavailable, flow held until it returns: {error}",
        )


async def _database_back(ctx: OperatorContext, namespace: str, name: str, uid: str) -> None:
    if uid in ctx.database_down:
        ctx.database_down.discard(uid)
        await ctx.kube.post_event(
            ObjectRef(namespace, name, uid),
            "Normal",
            "DatabaseRecovered",
            "database reachable again; caught up",
        )


@kopf.timer(
    GROUP,
    VERSION,
    PLURAL,
    when=_has_work,
    interval=get_settings().operator.stall_check_interval_seconds,
)
async def stall_check(name: str, namespace: str | None, uid: str, memo: Any, **_: Any) -> None:
    """Runs once right after the operator starts, for every flow, and then every interval."""
    assert namespace is not None, "CollectionFlow is namespaced"
    ctx: OperatorContext = memo.ctx
    try:
        async with ctx.lock(uid):
            await check_flow(ctx, namespace, name)
    except (DatabaseUnavailable, Conflict, UnreadableFlow) as error:
        flow_logger(namespace, name).warning("stall check postponed: %s", error)


@kopf.on.event(GROUP, VERSION, PLURAL)
def flow_changed(event: Mapping[str, Any], body: kopf.Body, uid: str, memo: Any, **_: Any) -> None:
    metrics = memo.ctx.metrics
    metrics.watch_event()
    gone = event.get("type") == "DELETED"
    metrics.flow_state(uid, None if gone else observed_state(dict(body)))
    memo.ctx.wakeups.wake(uid)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_MANAGED_BY: MANAGED_BY})
def job_changed(labels: Mapping[str, str], memo: Any, **_: Any) -> None:
    memo.ctx.metrics.watch_event()
    flow_uid = labels.get(LABEL_FLOW_UID)
    if flow_uid:
        memo.ctx.wakeups.wake(flow_uid)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def flow_deleted(name: str, namespace: str | None, uid: str, memo: Any, **_: Any) -> None:
    """Jobs go with the flow (owner references); the database rows are marked cancelled."""
    ctx: OperatorContext = memo.ctx
    try:
        await ctx.repository.mark_cancelled(uid)
    except DatabaseUnavailable as error:
        raise kopf.TemporaryError(f"database unavailable: {error}", delay=10) from error
    flow_logger(namespace or "", name).info("flow deleted; database rows marked cancelled")
