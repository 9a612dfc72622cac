"""The reconciler tasks: one per flow with work, stopped when it comes to rest or goes."""

from __future__ import annotations

import asyncio

import pytest

from collectionflow.runtime.workqueue import ObjectTasks, Wakeups

pytestmark = pytest.mark.unit


class Loops:
    """A stand-in for `run_flow`: counts its runs and ends when asked to stop, or never."""

    def __init__(self, *, stubborn: bool = False) -> None:
        self.started: list[str] = []
        self.forgotten: list[str] = []
        self.stubborn = stubborn
        self.wakeups = Wakeups()

    async def loop(self, uid: str, namespace: str, name: str, stop: asyncio.Event) -> None:
        self.started.append(uid)
        wake = self.wakeups.register(uid)
        while not stop.is_set() or self.stubborn:
            await wake.wait()
            wake.clear()

    def reconcilers(self) -> ObjectTasks:
        return ObjectTasks(self.wakeups, self.forgotten.append, self.loop)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_flow_with_work_gets_one_task_however_often_it_is_seen() -> None:
    loops = Loops()
    reconcilers = loops.reconcilers()
    for _ in range(3):
        reconcilers.observe("a", "ns", "flow-a", working=True)
    await settle()
    assert loops.started == ["a"]
    assert len(reconcilers) == 1
    await reconcilers.stop_all(1.0)


async def test_a_flow_at_rest_gets_no_task() -> None:
    loops = Loops()
    reconcilers = loops.reconcilers()
    reconcilers.observe("a", "ns", "flow-a", working=False)
    await settle()
    assert loops.started == []
    assert len(reconcilers) == 0


async def test_a_flow_come_to_rest_ends_its_task_and_is_forgotten() -> None:
    loops = Loops()
    reconcilers = loops.reconcilers()
    reconcilers.observe("a", "ns", "flow-a", working=True)
    await settle()
    reconcilers.observe("a", "ns", "flow-a", working=False)
    await settle()
    assert len(reconcilers) == 0
    assert loops.forgotten == ["a"]

    reconcilers.observe("a", "ns", "flow-a", working=True)
    await settle()
    assert loops.started == ["a", "a"], "work again after the end: a new task"
    await reconcilers.stop_all(1.0)


async def test_work_again_before_the_task_ended_keeps_the_same_task() -> None:
    loops = Loops()
    reconcilers = loops.reconcilers()
    reconcilers.observe("a", "ns", "flow-a", working=True)
    await settle()
    reconcilers.observe("a", "ns", "flow-a", working=False)
    reconcilers.observe("a", "ns", "flow-a", working=True)  # before the task saw the stop
    await settle()
    assert len(reconcilers) == 1
    assert loops.started == ["a"]
    assert loops.forgotten == []
    await reconcilers.stop_all(1.0)


async def test_stopping_all_cancels_a_task_that_outlives_the_grace() -> None:
    loops = Loops(stubborn=True)
    reconcilers = loops.reconcilers()
    reconcilers.observe("a", "ns", "flow-a", working=True)
    reconcilers.observe("b", "ns", "flow-b", working=True)
    await settle()
    await reconcilers.stop_all(0.05)
    assert len(reconcilers) == 0
    assert sorted(loops.forgotten) == ["a", "b"]


async def test_a_failed_loop_is_restarted_until_its_flow_stops() -> None:
    calls: list[str] = []

    async def failing(uid: str, namespace: str, name: str, stop: asyncio.Event) -> None:
        calls.append(uid)
        raise RuntimeError("boom")

    forgotten: list[str] = []
    reconcilers = ObjectTasks(Wakeups(), forgotten.append, failing, restart_seconds=0.01)
    reconcilers.observe("a", "ns", "flow-a", working=True)
    await asyncio.sleep(0.1)
    assert len(calls) >= 3, "restarted after each failure"
    assert len(reconcilers) == 1
    reconcilers.observe("a", "ns", "flow-a", working=False)
    await asyncio.sleep(0.05)
    assert len(reconcilers) == 0
    assert forgotten == ["a"]


async def test_no_task_starts_once_the_operator_is_stopping() -> None:
    loops = Loops()
    reconcilers = loops.reconcilers()
    await reconcilers.stop_all(1.0)
    reconcilers.observe("a", "ns", "flow-a", working=True)
    await settle()
    assert loops.started == []
