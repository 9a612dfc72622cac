"""The narrow ports the flow controller's parts take, instead of the whole OperatorContext.

Each is a structural type (typing.Protocol): the context satisfies every one, and a part that
takes a port can use only what the port names, which mypy checks. A test may hand a part any
object with those few members.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from collectionflow.api.reasons import EventReason
from collectionflow.domain.records import ChildSnapshot, JournalEntry
from collectionflow.k8s.gateway import ObjectRef
from collectionflow.metrics import Metrics


class EventPoster(Protocol):
    async def post_event(
        self, ref: ObjectRef, type_: str, reason: EventReason, message: str
    ) -> None: ...


class JournalWriter(Protocol):
    async def journal(self, entry: JournalEntry) -> bool: ...


class ChildReader(Protocol):
    async def child_snapshot(self, flow_uid: str) -> ChildSnapshot | None: ...


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
