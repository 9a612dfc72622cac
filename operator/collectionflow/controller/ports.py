"""The narrow ports the flow controller's parts take, instead of the whole OperatorContext.

Each is a structural type (typing.Protocol) naming the members one part uses; the context
satisfies every one, and mypy checks both sides: a part can use only what its port names, and
the composition root (`controller.operator`, the one module that takes OperatorContext) can
hand it only a context that has them. A test may hand a part any object with those members.

    Telling       visibility: Events, journal, metrics, fence, clock
    Diagnosing    diagnosis: cache, settings, database health, excuses
    StatusRestoring < Reading       status_record, reading
    Launching < Acting              runs, acting
    Reconciling = Acting + Reading + Diagnosing + Telling              reconcile
    Holding = Acting + Diagnosing + tasks, held flows, locks           outage
    Sweeping = Reconciling + Holding                                   stall
    Looping = Reconciling + Holding + leadership, apiserver, bound     flow_loop
    Observing < Watching (+ Holding)                                   watches, flows
    Observing < StartReading                                           pod_starts
    OrphanSweeping, Leading, Releasing                                 orphans, leadership
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from collectionflow.api.reasons import EventReason
from collectionflow.controller.context import Outage
from collectionflow.controller.eta import Durations
from collectionflow.controller.inprocess import InProcessRunner
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.cache import WatchCache
from collectionflow.domain.records import JournalEntry
from collectionflow.domain.sweep import Excuses
from collectionflow.k8s.gateway import KubeGateway, ObjectRef
from collectionflow.metrics import Metrics
from collectionflow.runtime.leaderelection import Leadership
from collectionflow.runtime.workqueue import Wakeups
from collectionflow.settings import Settings


class EventPoster(Protocol):
    async def post_event(
        self, ref: ObjectRef, type_: str, reason: EventReason, message: str
    ) -> None: ...


class JournalWriter(Protocol):
    async def journal(self, entry: JournalEntry) -> bool: ...


class Fence(Protocol):
    def fence(self) -> None:
        """Raise NotLeader unless this operator still holds the lead."""


class Telling(Protocol):
    """What making a flow's stall, recovery or catch-up visible needs: Events, the journal,
    the metrics, the leader's fence and the clock."""

    @property
    def kube(self) -> EventPoster: ...

    @property
    def repository(self) -> JournalWriter: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def leadership(self) -> Fence: ...

    def clock(self) -> dt.datetime: ...


class StatusWriter(EventPoster, Protocol):
    async def patch_flow_status(
        self, flow: dict[str, Any], patch: dict[str, Any]
    ) -> dict[str, Any]: ...


class StatusRestoring(Protocol):
    """What putting back a status someone else wrote needs (`controller.status_record`)."""

    @property
    def cache(self) -> WatchCache: ...

    @property
    def kube(self) -> StatusWriter: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def leadership(self) -> Fence: ...


class Reading(StatusRestoring, Protocol):
    """What reading a flow and its attempt needs (`controller.reading`): the cache, the API,
    this process's own attempts, and the wake-ups for a Job found ended."""

    @property
    def kube(self) -> KubeGateway: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def inprocess(self) -> InProcessRunner: ...

    @property
    def wakeups(self) -> Wakeups: ...


class Diagnosing(Protocol):
    """What the diagnosis of a flow reads (`controller.diagnosis`): no request, only the
    cache, the settings, the database's health and what excuses a Job's end going unseen."""

    @property
    def cache(self) -> WatchCache: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def database(self) -> Outage: ...

    def excuses(self) -> Excuses: ...


class FlowUids(Protocol):
    async def flow_uids(self, namespace: str | None, page: int = 500) -> set[str]: ...


class OrphanRows(Protocol):
    async def uncancelled_flow_uids(self, namespaces: Collection[str] = ()) -> set[str]: ...

    async def mark_cancelled(self, flow_uid: str) -> bool: ...


class OrphanSweeping(Protocol):
    """What marking deleted flows' rows cancelled needs (`controller.orphans`)."""

    @property
    def kube(self) -> FlowUids: ...

    @property
    def repository(self) -> OrphanRows: ...

    @property
    def leadership(self) -> Leadership: ...


class Launching(Protocol):
    """What starting a phase attempt needs (`controller.runs`): the API, this process's own
    runner, the refusals waited out, the cache and wake-ups, the journal and the fence."""

    @property
    def settings(self) -> Settings: ...

    @property
    def kube(self) -> KubeGateway: ...

    @property
    def repository(self) -> JournalWriter: ...

    @property
    def cache(self) -> WatchCache: ...

    @property
    def wakeups(self) -> Wakeups: ...

    @property
    def inprocess(self) -> InProcessRunner: ...

    @property
    def leadership(self) -> Fence: ...

    @property
    def refusals(self) -> dict[tuple[str, str], dt.datetime]: ...


class Acting(Launching, Protocol):
    """What carrying a decision out needs (`controller.acting`): starting attempts, the
    database's records, the status and Events, the metrics, the phases' durations."""

    @property
    def repository(self) -> FlowRepository: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def durations(self) -> Durations: ...

    def clock(self) -> dt.datetime: ...


class Reconciling(Acting, Reading, Diagnosing, Telling, Protocol):
    """What one reconcile of a flow needs (`controller.reconcile`): reading, diagnosing,
    acting, and telling a stall and its recovery."""


class Holding(Acting, Diagnosing, Protocol):
    """What holding flows through a database outage needs (`controller.outage`): the one
    probe's task, the wake-ups, the flows held and since when, each flow's lock."""

    @property
    def tasks(self) -> set[asyncio.Task[None]]: ...

    @property
    def database_down(self) -> dict[str, dt.datetime]: ...

    def lock(self, uid: str) -> asyncio.Lock: ...


class Sweeping(Reconciling, Holding, Protocol):
    """What the stall sweep needs (`controller.stall`): a reconcile's parts, and holding
    flows through an outage."""


class Looping(Reconciling, Holding, Protocol):
    """What a flow's reconciler task needs (`controller.flow_loop`): a reconcile's parts, the
    leadership it acts under, the bound on reconciles at once, the apiserver's health."""

    @property
    def leadership(self) -> Leadership: ...

    @property
    def apiserver(self) -> Outage: ...

    @property
    def reconciling(self) -> asyncio.Semaphore: ...

    def forget(self, uid: str) -> None: ...


class Observing(Protocol):
    """What turning a watch's events into the cache and wake-ups needs."""

    @property
    def cache(self) -> WatchCache: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def wakeups(self) -> Wakeups: ...

    def clock(self) -> dt.datetime: ...


class Watching(Holding, Observing, Protocol):
    """What the watches need (`controller.watches`, `controller.flows`): the API to list and
    watch, the cache and wake-ups, and for a deleted flow its rows cancelled by the leader."""

    @property
    def kube(self) -> KubeGateway: ...

    @property
    def leadership(self) -> Leadership: ...


class PodReader(Protocol):
    async def list_pods_of_jobs(
        self, namespace: str, job_names: Sequence[str]
    ) -> list[dict[str, Any]]: ...


class StartReading(Observing, Protocol):
    """What reading the pods of Jobs not seen to start needs (`controller.pod_starts`): the
    API to list them, the cache and wake-ups, and whether this replica leads."""

    @property
    def kube(self) -> PodReader: ...

    @property
    def leadership(self) -> Leadership: ...


class Leading(Observing, Protocol):
    """What taking and losing the lead needs (`controller.leadership`): the Lease through the
    API, the cache's statuses adopted and every flow woken on taking it, the in-process phases
    stopped on losing it, each change an Event and a count."""

    @property
    def settings(self) -> Settings: ...

    @property
    def kube(self) -> KubeGateway: ...

    @property
    def leadership(self) -> Leadership: ...

    @property
    def inprocess(self) -> InProcessRunner: ...

    @property
    def tasks(self) -> set[asyncio.Task[None]]: ...


class Releasing(Protocol):
    """What freeing the lead at shutdown needs: the tasks to finish, the connections to close."""

    @property
    def kube(self) -> KubeGateway: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def tasks(self) -> set[asyncio.Task[None]]: ...

    @property
    def engine(self) -> AsyncEngine: ...
