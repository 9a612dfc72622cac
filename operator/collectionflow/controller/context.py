"""What the flow controller's parts share, built once at operator startup and handed around
through kopf's memo.

No module-level globals: a test can build its own context against its own cluster and
database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from collectionflow.controller.eta import Durations
from collectionflow.controller.inprocess import InProcessRunner
from collectionflow.db.repository import FlowRepository
from collectionflow.domain.cache import WatchCache
from collectionflow.domain.sweep import Excuses
from collectionflow.domain.sweep import Outage as OutageSeen
from collectionflow.k8s.gateway import KubeGateway
from collectionflow.metrics import Metrics
from collectionflow.runtime.leaderelection import Leadership
from collectionflow.runtime.workqueue import Wakeups
from collectionflow.settings import Settings


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Outage:
    """One view of a dependency (the database, the apiserver) for every flow: whether it is
    down, and when it last came back.

    The first reconcile that meets an outage marks it down; flows then wait on `recovered`
    instead of each backing off on its own, and one probe wakes them all when the database
    answers again. A Job that finished before the database came back (plus the grace) was held
    by the known outage, not missed: it is not reported a second time as a stall.
    """

    def __init__(self) -> None:
        self.down_since: dt.datetime | None = None
        self.back_at: dt.datetime | None = None
        self.recovered = asyncio.Event()
        self.recovered.set()

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def mark_down(self, now: dt.datetime) -> bool:
        """Record an outage; True when this is its first report."""
        self.recovered.clear()
        if self.down_since is not None:
            return False
        self.down_since = now
        return True

    def mark_up(self, now: dt.datetime) -> None:
        if self.down_since is not None:
            self.down_since = None
            self.back_at = now
        self.recovered.set()

    def seen(self) -> OutageSeen:
        """The outage as the sweep's rules judge it."""
        return OutageSeen(self.down_since, self.back_at)


class JobRefused(Exception):
    """Creating a phase's Job was refused for good, and the flow's runner is Job."""


class JobDeferred(Exception):
    """A quota refused a phase's Job for the first time: it is retried (`error` is what the
    reconcile backs off on), and the flow's status says so (`message`)."""

    def __init__(self, message: str, error: Exception) -> None:
        super().__init__(message)
        self.message = message
        self.error = error


@dataclass
class OperatorContext:
    settings: Settings
    kube: KubeGateway
    repository: FlowRepository
    engine: AsyncEngine
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], dt.datetime] = utc_now
    wakeups: Wakeups = field(default_factory=Wakeups)
    cache: WatchCache = field(default_factory=WatchCache)
    database: Outage = field(default_factory=Outage)
    apiserver: Outage = field(default_factory=Outage)
    database_down: dict[str, dt.datetime] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    started_at: dt.datetime = field(default_factory=utc_now)
    leadership: Leadership = field(default_factory=Leadership)
    inprocess: InProcessRunner = field(init=False)
    refusals: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)
    durations: Durations = field(default_factory=Durations)
    reconciling: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.reconciling = asyncio.Semaphore(self.settings.operator.max_concurrent_reconciles)
        self.inprocess = InProcessRunner(
            self.settings.operator.in_process_limit, self.cache, self.wakeups.wake
        )

    def excuses(self) -> Excuses:
        """What explains a Job's end going unnoticed other than its flow: since when this
        operator acts (its start, or its taking over the lead), and the known outages."""
        acting_since = max(self.started_at, self.leadership.since or self.started_at)
        return Excuses(acting_since, (self.database.seen(), self.apiserver.seen()))

    def lock(self, uid: str) -> asyncio.Lock:
        """Serialises the reconciles and stall checks of one flow."""
        return self.locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        self.locks.pop(uid, None)
        self.wakeups.unregister(uid)


class FlowLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with namespace/flow and, when known, phase and attempt."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        where = f"{extra.get('namespace')}/{extra.get('flow')}"
        if extra.get("phase"):
            where += f" phase={extra['phase']} attempt={extra.get('attempt')}"
        return f"[{where}] {msg}", kwargs


def flow_logger(
    namespace: str, flow: str, phase: str | None = None, attempt: int = 0
) -> FlowLogger:
    return FlowLogger(
        logging.getLogger("collectionflow.flow"),
        {"namespace": namespace, "flow": flow, "phase": phase, "attempt": attempt},
    )
