"""The flow controller's side of leader election (`runtime.leaderelection`): the Lease read and
written through the gateway, and what a change of leadership means here.

On taking over, every flow's reconciler wakes and re-reads its flow from the API, as after a
restart; on losing the lead, the in-process phases stop (the next leader reruns them). A
change is logged, counted (`collectionflow_leader`, `collectionflow_leader_transitions_total`)
and posted as an Event on the Lease.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.reasons import EventReason
from collectionflow.controller.ports import Leading, Releasing
from collectionflow.k8s.gateway import (
    ApiUnreachable,
    Conflict,
    KubeGateway,
    ObjectRef,
    api_error_message,
)
from collectionflow.runtime.leaderelection import Elector, LeaseConflict, LeaseUnavailable
from collectionflow.runtime.lease import Timings
from collectionflow.settings import LeaderSettings

log = logging.getLogger("collectionflow.leader")


def timings_of(leader: LeaderSettings) -> Timings:
    return Timings(
        lease_duration=leader.lease_duration_seconds,
        renew_deadline=leader.renew_deadline_seconds,
        retry_period=leader.retry_period_seconds,
    )


class GatewayLeases:
    """The leader Lease through the operator's gateway, its errors in the election's terms."""

    def __init__(self, kube: KubeGateway) -> None:
        self.kube = kube

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.kube.get_lease(namespace, name)
        except ApiException as error:
            raise LeaseUnavailable(f"Kubernetes API error {api_error_message(error)}") from None
        except ApiUnreachable as error:
            raise LeaseUnavailable(str(error)) from None

    async def write(self, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.kube.write_lease(manifest)
        except Conflict as error:
            raise LeaseConflict(str(error)) from None
        except ApiException as error:
            raise LeaseUnavailable(f"Kubernetes API error {api_error_message(error)}") from None
        except ApiUnreachable as error:
            raise LeaseUnavailable(str(error)) from None


def elector(ctx: Leading) -> Elector:
    settings = ctx.settings.leader
    return Elector(
        ctx.leadership,
        GatewayLeases(ctx.kube),
        settings.lease_namespace,
        settings.lease_name,
        settings.identity,
        timings_of(settings),
        lambda leading: _changed(ctx, leading),
        ctx.clock,
    )


def _changed(ctx: Leading, leading: bool) -> None:
    """Log, count and post a change of leadership; wake every flow on taking over, stop the
    in-process phases on losing the lead."""
    ctx.metrics.leader_transitions.inc()
    identity = ctx.settings.leader.identity
    if leading:
        message = f"{identity} became the leader; it reconciles every flow from now on"
        log.info("%s", message)
        ctx.cache.adopt_statuses()
        ctx.wakeups.wake_all()
    else:
        message = f"{identity} stopped leading (its renewals ran out); it acts no more"
        log.warning("%s", message)
        stopping = asyncio.create_task(ctx.inprocess.stop(), name="inprocess-stop")
        ctx.tasks.add(stopping)
        stopping.add_done_callback(ctx.tasks.discard)
    posting = asyncio.create_task(_post(ctx, leading, message), name="leader-event")
    ctx.tasks.add(posting)
    posting.add_done_callback(ctx.tasks.discard)


async def _post(ctx: Leading, leading: bool, message: str) -> None:
    settings = ctx.settings.leader
    ref = ObjectRef(
        settings.lease_namespace,
        settings.lease_name,
        "",
        kind="Lease",
        api_version="coordination.k8s.io/v1",
    )
    reason = EventReason.LEADER_ELECTED if leading else EventReason.LEADER_LOST
    try:
        await ctx.kube.post_event(ref, "Normal", reason, message)
    except (ApiException, ApiUnreachable) as error:
        log.warning("could not post the leadership Event: %s", error)


async def release(ctx: Releasing, lead: Elector) -> None:
    """On shutdown: free the Lease for a successor, and count it."""
    if await lead.release():
        ctx.metrics.leader_transitions.inc()
