"""The election loop: hold the leader Lease while this replica runs, and say when that changes.

Every replica runs it. It reads the Lease every retry period and takes, renews or leaves it as
`domain.leader` rules; `Leadership` (in the context) turns the renewals into the right to act.
A change is logged, counted (`collectionflow_leader`, `collectionflow_leader_transitions_total`)
and posted as an Event on the Lease. On taking over, every flow's reconciler wakes and re-reads
its flow from the API, as after a restart; on shutdown the leader releases the Lease so that a
successor takes over at its next try.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.reasons import EventReason
from collectionflow.controller.context import OperatorContext
from collectionflow.domain.leader import (
    LeaseRecord,
    Step,
    Timings,
    claim,
    next_step,
    read_lease,
    release,
)
from collectionflow.k8s.gateway import ApiUnreachable, Conflict, ObjectRef, api_error_message
from collectionflow.specs.leases import lease_manifest

log = logging.getLogger("collectionflow.leader")


def timings_of(ctx: OperatorContext) -> Timings:
    leader = ctx.settings.leader
    return Timings(
        lease_duration=leader.lease_duration_seconds,
        renew_deadline=leader.renew_deadline_seconds,
        retry_period=leader.retry_period_seconds,
    )


class Elector:
    """One replica's side of the election."""

    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings.leader
        self.timings = timings_of(ctx)
        self.observed: LeaseRecord | None = None
        self.observed_at = time.monotonic()
        self.was_leading = False

    async def run(self) -> None:
        """Try, renew or wait every retry period, until cancelled."""
        period = self.timings.retry_period
        while True:
            await self.try_once()
            self.note_change()
            # Followers jitter their tries, as client-go does, so they do not write at once.
            leading = self.ctx.leadership.leading
            await asyncio.sleep(period if leading else period * random.uniform(1.0, 1.2))

    async def try_once(self) -> None:
        ctx, settings = self.ctx, self.settings
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timings.retry_period):
                body = await ctx.kube.get_lease(settings.lease_namespace, settings.lease_name)
            record = None if body is None else read_lease(body)
            if record is None or not record.same_as(self.observed):
                self.observed, self.observed_at = record, started
            step = next_step(record, settings.identity, started - self.observed_at)
            if step is Step.WAIT:
                if ctx.leadership.leading:
                    ctx.leadership.lost()  # someone else holds it: stop at once
                return
            spec = claim(record, settings.identity, ctx.clock(), self.timings)
            manifest = lease_manifest(settings.lease_namespace, settings.lease_name, spec, record)
            async with asyncio.timeout(self.timings.retry_period):
                written = await ctx.kube.write_lease(manifest)
        except Conflict:
            return  # another replica wrote first; read again at the next try
        except ApiException as error:
            log.warning("leader election: Kubernetes API error %s", api_error_message(error))
            return
        except (ApiUnreachable, TimeoutError) as error:
            log.warning("leader election: %s", error)
            return
        self.observed, self.observed_at = read_lease(written), started
        ctx.leadership.renewed(started, ctx.clock())

    def note_change(self) -> None:
        """Log, count and post a change of leadership, and wake every flow on taking over."""
        ctx = self.ctx
        leading = ctx.leadership.leading
        if leading == self.was_leading:
            return
        self.was_leading = leading
        ctx.metrics.leader_transitions.inc()
        identity = self.settings.identity
        if leading:
            message = f"{identity} became the leader; it reconciles every flow from now on"
            log.info("%s", message)
            ctx.wakeups.wake_all()
        else:
            ctx.leadership.lost()
            message = f"{identity} stopped leading (its renewals ran out); it acts no more"
            log.warning("%s", message)
            if ctx.inprocess is not None:  # its in-process phases go: the next leader reruns
                stopping = asyncio.create_task(ctx.inprocess.stop(), name="inprocess-stop")
                ctx.tasks.add(stopping)
                stopping.add_done_callback(ctx.tasks.discard)
        ctx.tasks.add(asyncio.create_task(self._post(leading, message), name="leader-event"))

    async def _post(self, leading: bool, message: str) -> None:
        current = asyncio.current_task()
        try:
            ref = ObjectRef(
                self.settings.lease_namespace,
                self.settings.lease_name,
                "",
                kind="Lease",
                api_version="coordination.k8s.io/v1",
            )
            reason = EventReason.LEADER_ELECTED if leading else EventReason.LEADER_LOST
            await self.ctx.kube.post_event(ref, "Normal", reason, message)
        except (ApiException, ApiUnreachable) as error:
            log.warning("could not post the leadership Event: %s", error)
        finally:
            if current is not None:
                self.ctx.tasks.discard(current)

    async def release(self) -> None:
        """Stop acting, then free the Lease for a successor (on shutdown)."""
        ctx = self.ctx
        if not ctx.leadership.leading:
            return
        ctx.leadership.lost()
        record = self.observed
        if record is None or record.holder != self.settings.identity:
            return
        spec = release(record, ctx.clock())
        manifest = lease_manifest(
            self.settings.lease_namespace, self.settings.lease_name, spec, record
        )
        try:
            async with asyncio.timeout(self.timings.retry_period):
                await ctx.kube.write_lease(manifest)
        except (Conflict, ApiException, ApiUnreachable, TimeoutError) as error:
            log.warning("could not release the leader Lease: %s", error)
            return
        ctx.metrics.leader_transitions.inc()
        log.info("%s released the leader Lease", self.settings.identity)
