"""The watch of flows: the cache, the reconciler tasks, and a re-list that lacks a flow.

The context is a standby's (not leading), so nothing here reaches the API or the database.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from collectionflow.api.models import FlowState
from collectionflow.controller.context import OperatorContext
from collectionflow.controller.flows import LEGACY_FINALIZER, FlowWatch
from collectionflow.runtime.informer import LISTED, SYNCED, WatchEvent
from collectionflow.runtime.leaderelection import Leadership
from collectionflow.runtime.workqueue import ObjectTasks
from collectionflow.settings import Settings

pytestmark = pytest.mark.unit


def flow(uid: str, state: str | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"flow-{uid}",
            "namespace": "ns",
            "uid": uid,
            "generation": 1,
            "resourceVersion": "1",
            **meta,
        },
        "spec": {"flowType": "collection"},
        "status": {"state": state} if state else {},
    }


class Watched:
    def __init__(self) -> None:
        self.ctx = OperatorContext(
            settings=Settings(),
            kube=cast(Any, None),
            repository=cast(Any, None),
            engine=cast(Any, None),
            leadership=Leadership(renew_deadline=10.0),  # a standby: never leading here
        )
        self.loops: list[str] = []
        self.reconcilers = ObjectTasks(self.ctx.wakeups, self.ctx.forget, self.loop)
        self.watch = FlowWatch(self.ctx, self.reconcilers)

    async def loop(self, uid: str, namespace: str, name: str, stop: asyncio.Event) -> None:
        self.loops.append(uid)
        await stop.wait()

    def take(self, kind: str, body: dict[str, Any] | None = None) -> None:
        self.watch.take(WatchEvent(kind, body or {}))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_listed_flow_with_work_gets_a_reconciler_and_one_at_rest_none() -> None:
    watched = Watched()
    watched.take(LISTED, flow("a"))
    watched.take(LISTED, flow("b", FlowState.SUCCEEDED))
    watched.take(SYNCED)
    await settle()
    assert watched.loops == ["a"]
    assert watched.ctx.cache.flow("b") is not None, "a flow at rest is still known"
    await watched.reconcilers.stop_all(1.0)


async def test_a_flow_coming_to_rest_or_being_deleted_stops_its_reconciler() -> None:
    watched = Watched()
    watched.take("ADDED", flow("a"))
    watched.take("ADDED", flow("b"))
    await settle()
    succeeded = flow("a", FlowState.SUCCEEDED, resourceVersion="2")
    watched.ctx.cache.wrote_flow(succeeded)  # the operator's own status write
    watched.take("MODIFIED", succeeded)
    watched.take("MODIFIED", flow("b", deletionTimestamp="2026-01-01T00:00:00Z"))
    await settle()
    assert len(watched.reconcilers) == 0


async def test_a_status_someone_else_wrote_keeps_a_reconciler_even_at_rest() -> None:
    watched = Watched()
    watched.take("ADDED", flow("a"))
    await settle()
    watched.take("MODIFIED", flow("a", FlowState.SUCCEEDED, resourceVersion="2"))
    await settle()
    assert len(watched.reconcilers) == 1, "its status is put back first"
    await watched.reconcilers.stop_all(1.0)


async def test_a_relist_that_lacks_a_flow_takes_it_as_deleted() -> None:
    watched = Watched()
    watched.take(LISTED, flow("a"))
    watched.take(LISTED, flow("b"))
    watched.take(SYNCED)
    await settle()
    assert len(watched.reconcilers) == 2

    watched.take(LISTED, flow("a"))  # the watch came back; "b" went meanwhile
    watched.take(SYNCED)
    await settle()
    assert watched.ctx.cache.flow("b") is None
    assert watched.ctx.cache.flow("a") is not None
    assert len(watched.reconcilers) == 1
    assert watched.watch.known == {"a": ("ns", "flow-a")}


async def test_a_standby_leaves_a_legacy_finalizer_to_the_leader() -> None:
    watched = Watched()
    watched.take("ADDED", flow("a", finalizers=[LEGACY_FINALIZER]))
    await settle()
    assert watched.watch.unfinalizing == set()
    await watched.reconcilers.stop_all(1.0)
