"""Per-object work, as a controller's work queue does it: one task per object that has work,
woken by its watch events (`Wakeups`), stopped when it has none; a task that fails starts
again after a pause. Plain asyncio tasks: knowing nothing of what the objects are."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)
RESTART_SECONDS = 10.0


class Wakeups:
    """One event per object: its watch events set it, its task waits on it."""

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

    def wake_all(self) -> None:
        for event in self._events.values():
            event.set()


@dataclass
class _Reconciler:
    task: asyncio.Task[None]
    stop: asyncio.Event


Loop = Callable[[str, str, str, asyncio.Event], Awaitable[None]]


class ObjectTasks:
    """One task per object that has work, by uid: each runs `loop(uid, namespace, name, stop)`,
    again after `restart_seconds` if it fails; `forget(uid)` drops what the object held once
    its task has ended."""

    def __init__(
        self,
        wakeups: Wakeups,
        forget: Callable[[str], None],
        loop: Loop,
        restart_seconds: float = RESTART_SECONDS,
    ) -> None:
        self._wakeups = wakeups
        self._forget = forget
        self._loop = loop
        self._restart_seconds = restart_seconds
        self._running: dict[str, _Reconciler] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._running)

    def observe(self, uid: str, namespace: str, name: str, working: bool) -> None:
        """Start the object's task when it has work and none runs; otherwise ask it to stop
        once it has finished its step. A task asked to stop and not stopped yet simply goes on
        when its object has work again."""
        if self._closed:  # the operator is stopping
            return
        running = self._running.get(uid)
        if running is not None:
            if working:
                running.stop.clear()
            else:
                running.stop.set()
                self._wakeups.wake(uid)
        elif working:
            stop = asyncio.Event()
            task = asyncio.create_task(self._run(uid, namespace, name, stop), name=f"{uid}")
            self._running[uid] = _Reconciler(task, stop)

    async def stop_all(self, grace: float) -> None:
        """Ask every task to stop, wait up to `grace` seconds for their steps to end, and cancel
        the rest. No task starts after this."""
        self._closed = True
        running = list(self._running.values())
        for reconciler in running:
            reconciler.stop.set()
        self._wakeups.wake_all()
        tasks = [reconciler.task for reconciler in running]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, uid: str, namespace: str, name: str, stop: asyncio.Event) -> None:
        try:
            while True:
                try:
                    await self._loop(uid, namespace, name, stop)
                    return
                except Exception:  # a bug must not leave the object without its task
                    log.exception(
                        "[%s/%s] task failed; restarting it in %.0fs",
                        namespace,
                        name,
                        self._restart_seconds,
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._restart_seconds)
                if stop.is_set():
                    return
        finally:
            # No await between the loop's end and here: an object that has work again from now
            # on gets a new task.
            self._running.pop(uid, None)
            self._forget(uid)
