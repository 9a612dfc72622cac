"""What every handler needs, built once at operator startup and handed around through kopf's memo.

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

from collectionflow.db.repository import FlowRepository
from collectionflow.k8s.gateway import KubeGateway
from collectionflow.metrics import Metrics
from collectionflow.settings import Settings


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Wakeups:
    """One event per flow: Job and flow watch events set it, the flow's daemon waits on it."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def register(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def unregister(self, uid: str) -> None:
        self._events.pop(uid, None)

    def wake(self, uid: str) -> None:
        event = self._events.get(uid)
        if event is not None:
            event.set()


@dataclass
class OperatorContext:
    settings: Settings
    kube: KubeGateway
    repository: FlowRepository
    engine: AsyncEngine
    metrics: Metrics = field(default_factory=Metrics)
    clock: Callable[[], dt.datetime] = utc_now
    wakeups: Wakeups = field(default_factory=Wakeups)
    database_down: set[str] = field(default_factory=set)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

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
