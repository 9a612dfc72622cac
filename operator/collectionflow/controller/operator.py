"""kopf registrations: the operator's startup and cleanup. Thin on purpose: each hands its
work to plain functions.

kopf runs the operator's life (login, startup, signals, cleanup); it watches no resource. The
controller's list-then-watch loops of flows, phase Jobs, their finished pods and heartbeat
Leases (`controller.watches` on `runtime.informer`) feed the watch cache; the pods of a Job
not seen to start are read (`controller.pod_starts`). A change a flow decides on
wakes its reconciler task (`controller.flow_loop`), which reconciles from the cache; the
operator's own status writes wake nobody. A flow with work has a task; a flow at rest has
none and costs nothing. Each task re-reads its flow, Job and pods from the API at a slow
resync interval, as a safety net, so the reads follow the active flows, not the stored ones.

One sweep task checks the active flows for stalls on cached evidence every interval, never
on kopf's `idle=`, which the operator's own status writes would keep resetting.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from collectionflow.controller.context import OperatorContext
from collectionflow.controller.diagnosis import sweep_rules
from collectionflow.controller.flow_loop import flow_tasks
from collectionflow.controller.leadership import elector, release, timings_of
from collectionflow.controller.orphans import cancel_orphans_on_lead
from collectionflow.controller.pod_starts import read_unstarted_forever
from collectionflow.controller.stall import SweepMemory, sweep
from collectionflow.controller.watches import start_watches
from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.db.migrate import upgrade
from collectionflow.db.repository import FlowRepository
from collectionflow.k8s.gateway import KubeGateway, load_api_client
from collectionflow.metrics import Metrics
from collectionflow.runtime import healthz
from collectionflow.runtime.leaderelection import Elector, Leadership, NotLeader
from collectionflow.runtime.lease import ElectionError
from collectionflow.runtime.workqueue import ObjectTasks
from collectionflow.settings import get_settings

log = logging.getLogger(__name__)
# How long a stopping operator lets each reconciler finish its step before cancelling it.
STOP_SECONDS = 5.0


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf watches no resource, so it need not list and watch CRDs and namespaces (nor hold
    # the cluster-wide RBAC for that).
    settings.scanning.disabled = True
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
    namespaces = getattr(memo, "namespaces", ())
    ctx.tasks.add(asyncio.create_task(_sweep_forever(ctx), name="stall-sweep"))
    ctx.tasks.add(asyncio.create_task(cancel_orphans_on_lead(ctx, namespaces), name="orphans"))
    ctx.tasks.add(asyncio.create_task(read_unstarted_forever(ctx), name="pod-starts"))
    memo.reconcilers = flow_tasks(ctx)
    ctx.tasks.update(start_watches(ctx, memo.reconcilers, namespaces))
    memo.ctx = ctx
    memo.elector = None
    memo.election = None
    if app.leader.enabled:
        try:
            timings = timings_of(ctx.settings.leader)
        except ElectionError as error:
            raise kopf.PermanentError(f"leader election settings: {error}") from error
        ctx.leadership = Leadership(renew_deadline=timings.renew_deadline)
        memo.elector = elector(ctx)
        memo.election = asyncio.create_task(memo.elector.run(), name="leader-election")
        log.info(
            "leader election on lease %s/%s as %s",
            app.leader.lease_namespace,
            app.leader.lease_name,
            app.leader.identity,
        )
    metrics.leader.set_function(lambda: float(ctx.leadership.leading))
    metrics.database_available.set_function(lambda: float(not ctx.database.is_down))
    metrics.in_process_runs.set_function(lambda: float(ctx.inprocess.running))
    critical = [task for task in (*ctx.tasks, memo.election) if task is not None]
    memo.probes = await healthz.serve(
        getattr(memo, "health_port", 0),
        app.operator.metrics_port,
        lambda: not any(t.done() for t in critical),
        metrics.exposition,
    )
    log.info("operator ready: database %s", engine.url.render_as_string(hide_password=True))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    ctx: OperatorContext | None = getattr(memo, "ctx", None)
    lead: Elector | None = getattr(memo, "elector", None)
    if lead is not None and ctx is not None:
        memo.election.cancel()
        await asyncio.gather(memo.election, return_exceptions=True)
        await release(ctx, lead)
    for probes in getattr(memo, "probes", None) or ():
        await probes.cleanup()
    reconcilers: ObjectTasks | None = getattr(memo, "reconcilers", None)
    if reconcilers is not None:
        await reconcilers.stop_all(STOP_SECONDS)
    if ctx is not None:
        await ctx.inprocess.stop()
        for task in ctx.tasks:
            task.cancel()
        await asyncio.gather(*ctx.tasks, return_exceptions=True)
        await ctx.engine.dispose()
        await ctx.kube.api_client.close()


async def _sweep_forever(ctx: OperatorContext) -> None:
    interval = ctx.settings.operator.stall_check_interval_seconds
    rules, memory = sweep_rules(ctx.settings.operator), SweepMemory()
    while True:
        await asyncio.sleep(interval)
        if not ctx.leadership.leading:
            continue
        try:
            await sweep(ctx, rules, memory)
        except NotLeader:
            continue
        except Exception:  # the sweep must outlive any one bad pass
            log.exception("stall sweep failed; next pass in %.0fs", interval)
