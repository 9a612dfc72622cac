"""kopf registrations. Thin on purpose: each handler hands its work to a plain function.

kopf's watch of flows and the operator's own watches of phase Jobs, their finished pods and
heartbeat Leases (`handlers.watches`) feed the watch cache. A change a flow decides on wakes
its daemon, which reconciles from the cache; the operator's own status writes wake nobody.
A flow with work has a daemon; a flow at rest has none and costs nothing. Each daemon re-reads
its flow, Job and pods from the API at a slow resync interval, as a safety net, so the reads
follow the active flows, not the stored ones.

Errors never end the loop. A database outage is shared: the first reconcile that meets it
marks it down, held flows wait for one probe to see the database answer again and then all
wake at once; each flow reports it once as a `DatabaseUnavailable` Warning Event.

One sweep task checks the active flows for stalls on cached evidence every interval, never
on kopf's `idle=`, which the operator's own status writes would keep resetting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.models import GROUP, PLURAL, VERSION
from collectionflow.api.reasons import EventReason
from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.db.migrate import upgrade
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.cache import DELETED
from collectionflow.domain.leader import ElectionError
from collectionflow.domain.view import UnreadableFlow, has_work, observed_state
from collectionflow.handlers.context import Leadership, NotLeader, OperatorContext, flow_logger
from collectionflow.handlers.inprocess import InProcessRunner
from collectionflow.handlers.leadership import Elector, timings_of
from collectionflow.handlers.reconcile import reconcile
from collectionflow.handlers.stall import sweep
from collectionflow.handlers.watches import start_watches
from collectionflow.k8s.gateway import (
    ApiUnreachable,
    Conflict,
    KubeGateway,
    ObjectRef,
    api_error_message,
    load_api_client,
)
from collectionflow.metrics import Metrics
from collectionflow.settings import get_settings

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0
PROBE_SECONDS = 1.0


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
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
    ctx = OperatorContext(
        metrics=metrics,
        settings=app,
        kube=KubeGateway(await load_api_client(), on_request=metrics.api_requests.inc),
        repository=FlowRepository(make_sessionmaker(engine)),
        engine=engine,
    )
    ctx.inprocess = InProcessRunner(app.operator.in_process_limit, ctx.cache, ctx.wakeups.wake)
    ctx.tasks.add(asyncio.create_task(_sweep_forever(ctx), name="stall-sweep"))
    ctx.tasks.update(start_watches(ctx, getattr(memo, "namespaces", ())))
    memo.ctx = ctx
    memo.elector = None
    memo.election = None
    if app.leader.enabled:
        try:
            timings = timings_of(ctx)
        except ElectionError as error:
            raise kopf.PermanentError(f"leader election settings: {error}") from error
        ctx.leadership = Leadership(renew_deadline=timings.renew_deadline)
        memo.elector = Elector(ctx)
        memo.election = asyncio.create_task(memo.elector.run(), name="leader-election")
        log.info(
            "leader election on lease %s/%s as %s",
            app.leader.lease_namespace,
            app.leader.lease_name,
            app.leader.identity,
        )
    metrics.leader.set_function(lambda: float(ctx.leadership.leading))
    critical = [task for task in (*ctx.tasks, memo.election) if task is not None]
    ports = {port for port in (app.operator.metrics_port, getattr(memo, "health_port", 0)) if port}
    memo.probes = await metrics.serve(ports, lambda: not any(t.done() for t in critical))
    log.info("operator ready: database %s", engine.url.render_as_string(hide_password=True))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    ctx: OperatorContext | None = getattr(memo, "ctx", None)
    elector: Elector | None = getattr(memo, "elector", None)
    if elector is not None:
        memo.election.cancel()
        await asyncio.gather(memo.election, return_exceptions=True)
        await elector.release()
    probes = getattr(memo, "probes", None)
    if probes is not None:
        await probes.cleanup()
    if ctx is not None:
        if ctx.inprocess is not None:
            await ctx.inprocess.stop()
        for task in ctx.tasks:
            task.cancel()
        await asyncio.gather(*ctx.tasks, return_exceptions=True)
        await ctx.engine.dispose()
        await ctx.kube.api_client.close()


class NoDiffBase(kopf.DiffBaseStorage):
    """No handler here reacts to a diff (no on.create, on.update or on.delete: the watch cache
    decides what changed), so kopf need not deep-copy every watched body to build one."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _has_work(body: kopf.Body, **_: Any) -> bool:
    """kopf starts a flow's reconciler while this holds and stops it when it no longer does,
    so flows at rest cost no task and no API reads."""
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
    fresh = True
    trigger = "resync"
    epoch = ctx.leadership.epoch
    try:
        while not stopped:
            if not ctx.leadership.leading and not await ctx.leadership.wait_leading(stopped):
                break
            if epoch != ctx.leadership.epoch:  # taken over: read the truth, as after a start
                epoch, fresh, trigger = ctx.leadership.epoch, True, "leader"
            wake.clear()
            ctx.metrics.reconciles.labels(trigger=trigger).inc()
            delay = ctx.settings.operator.resync_seconds
            waits_for = wake
            try:
                async with ctx.lock(uid):
                    decision = await reconcile(ctx, uid, namespace, name, fresh=fresh)
                failures = 0
                ctx.apiserver.mark_up(ctx.clock())
                if decision is not None and decision.status is not None and not decision.start:
                    delay = 0.0  # decide again on what was just written
                    trigger = "step"
                await _database_back(ctx, namespace, name, uid)
            except Conflict:
                ctx.cache.forget_flow(uid)
                delay = 0.0
                trigger = "conflict"
            except DatabaseUnavailable as error:
                waits_for = ctx.database.recovered
                delay = MAX_BACKOFF_SECONDS
                await _database_down(ctx, namespace, name, uid, error)
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
            if delay:
                fresh = not await _sleep_until(waits_for, stopped, delay)
                trigger = "resync" if fresh else "event"
    finally:
        ctx.metrics.reconcilers.dec()
        ctx.forget(uid)


async def _sleep_until(event: asyncio.Event, stopped: kopf.DaemonStopped, delay: float) -> bool:
    """Wait for `event`, the daemon's stop, or `delay`; True unless the delay ran out."""
    waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        done, _ = await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


async def _database_down(
    ctx: OperatorContext, namespace: str, name: str, uid: str, error: Exception
) -> None:
    _note_outage(ctx, error)
    if uid not in ctx.database_down:
        ctx.database_down.add(uid)
        flow_logger(namespace, name).warning("database unavailable; flow held: %s", error)
        await ctx.kube.post_event(
            ObjectRef(namespace, name, uid),
            "Warning",
            EventReason.DATABASE_UNAVAILABLE,
            f"database unavailable, flow held until it returns: {error}",
        )


def _note_outage(ctx: OperatorContext, error: Exception) -> None:
    """Mark the database down; the first to notice starts the one probe."""
    if ctx.database.mark_down(ctx.clock()):
        log.warning("database unavailable (%s); holding flows until it answers", error)
        ctx.tasks.add(asyncio.create_task(_probe_database(ctx), name="database-probe"))


async def _probe_database(ctx: OperatorContext) -> None:
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


async def _database_back(ctx: OperatorContext, namespace: str, name: str, uid: str) -> None:
    if uid in ctx.database_down:
        ctx.database_down.discard(uid)
        await ctx.kube.post_event(
            ObjectRef(namespace, name, uid),
            "Normal",
            EventReason.DATABASE_RECOVERED,
            "database reachable again; caught up",
        )


async def _sweep_forever(ctx: OperatorContext) -> None:
    interval = ctx.settings.operator.stall_check_interval_seconds
    while True:
        await asyncio.sleep(interval)
        if not ctx.leadership.leading:
            continue
        try:
            await sweep(ctx)
        except NotLeader:
            continue
        except Exception:  # the sweep must outlive any one bad pass
            log.exception("stall sweep failed; next pass in %.0fs", interval)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def flow_changed(
    event: Mapping[str, Any], body: kopf.Body, name: str, uid: str, memo: Any, **_: Any
) -> None:
    ctx: OperatorContext = memo.ctx
    ctx.metrics.watch_event()
    kind = event.get("type")
    ctx.metrics.flow_state(uid, None if kind == DELETED else observed_state(dict(body)))
    if ctx.cache.observe_flow(kind, body):
        ctx.wakeups.wake(uid)
    if kind == DELETED and ctx.leadership.leading:
        task = asyncio.create_task(_cancel_rows(ctx, body["metadata"]["namespace"], name, uid))
        ctx.tasks.add(task)
        task.add_done_callback(ctx.tasks.discard)


async def _cancel_rows(ctx: OperatorContext, namespace: str, name: str, uid: str) -> None:
    """A deleted flow's Jobs go with it (owner references); its database rows are marked
    cancelled, retried until the database answers."""
    while True:
        try:
            await ctx.repository.mark_cancelled(uid)
        except DatabaseUnavailable as error:
            _note_outage(ctx, error)
            await ctx.database.recovered.wait()
            await asyncio.sleep(PROBE_SECONDS)
            continue
        flow_logger(namespace, name).info("flow deleted; database rows marked cancelled")
        return
