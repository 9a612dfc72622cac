"""The fallback runner: a phase attempt as a process of the operator's own pod.

Same worker entry point and contract as a Job: the Job manifest's environment, a heartbeat
Lease (the worker writes it), the result read from the termination-message file, the phase's
`activeDeadlineSeconds` and `backoffLimit`. At most `in_process_limit` run at once; the rest
wait their turn. The attempt is reported through Job-shaped bodies in the watch cache
(`domain.runner`), so the reconcile and the stall sweep treat it like a Job.

It dies with the operator's pod. After a crash nobody knows the attempt; its flow then finds
no Job and no process, and the stall rules call it `RunnerLost` and rerun it as attempt+1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collectionflow.api.contract import ENV_TERMINATION_MESSAGE_PATH
from collectionflow.domain.cache import WatchCache
from collectionflow.domain.results import TERMINATION_MESSAGE_LIMIT
from collectionflow.domain.runner import finished_bodies, running_bodies

log = logging.getLogger("collectionflow.inprocess")

Bodies = tuple[dict[str, Any], list[dict[str, Any]]]


class InProcessRunner:
    def __init__(self, limit: int, cache: WatchCache, wake: Callable[[str], None]) -> None:
        self.limit = limit
        self.cache = cache
        self.wake = wake
        self._slots = asyncio.Semaphore(limit)
        self._bodies: dict[tuple[str, str], Bodies] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0

    def bodies(self, namespace: str, name: str) -> Bodies | None:
        """The Job-shaped bodies of an attempt this process runs or ran; None if unknown."""
        return self._bodies.get((namespace, name))

    def start(self, manifest: dict[str, Any], flow_uid: str, now: dt.datetime) -> None:
        meta = manifest["metadata"]
        key = (meta["namespace"], meta["name"])
        if key in self._bodies:
            return  # already running or ran: one process per attempt
        self._publish(key, running_bodies(*key, now))
        task = asyncio.create_task(self._run(manifest, key, flow_uid, now), name=f"run-{key[1]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def queued(self) -> int:
        return self._waiting

    async def stop(self) -> None:
        """Kill every in-process attempt and forget them all (shutdown, or the leadership lost:
        whoever leads next reruns them, as after a crash)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._bodies.clear()

    def _publish(self, key: tuple[str, str], bodies: Bodies) -> None:
        self._bodies[key] = bodies
        self.cache.put_job(bodies[0], *key)
        self.cache.put_pods(*key, bodies[1])

    async def _run(
        self, manifest: dict[str, Any], key: tuple[str, str], flow_uid: str, started: dt.datetime
    ) -> None:
        spec = manifest["spec"]
        self._waiting += 1
        if self._slots.locked():
            log.info("%s/%s waits for an in-process slot (%d running)", *key, self.limit)
        async with self._slots:
            self._waiting -= 1
            exit_code, message, reason = await self._attempts(manifest, key, spec)
        finished = dt.datetime.now(dt.UTC)
        self._publish(key, finished_bodies(*key, started, finished, exit_code, message, reason))
        log.info("%s/%s ran in-process: exit code %d", *key, exit_code)
        self.wake(flow_uid)

    async def _attempts(
        self, manifest: dict[str, Any], key: tuple[str, str], spec: dict[str, Any]
    ) -> tuple[int, str | None, str | None]:
        """Run the container's command up to backoffLimit + 1 times within the deadline."""
        container = spec["template"]["spec"]["containers"][0]
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if argv and argv[0] == "collectionflow":
            argv = [sys.executable, "-m", "collectionflow", *argv[1:]]
        values = {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
        deadline = asyncio.get_running_loop().time() + float(
            spec.get("activeDeadlineSeconds") or 3600
        )
        exit_code, message = 1, None
        for _ in range(int(spec.get("backoffLimit") or 0) + 1):
            with tempfile.TemporaryDirectory(prefix="cf-inprocess-") as workdir:
                termination = Path(workdir) / "termination-log"
                env = {
                    **os.environ,
                    **values,
                    "HOSTNAME": f"{key[1]}-inprocess",
                    ENV_TERMINATION_MESSAGE_PATH: str(termination),
                }
                process = await asyncio.create_subprocess_exec(*argv, env=env, cwd=workdir)
                remaining = deadline - asyncio.get_running_loop().time()
                try:
                    exit_code = await asyncio.wait_for(process.wait(), max(remaining, 0.1))
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
                    return 137, None, "DeadlineExceeded"
                except asyncio.CancelledError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    raise
                with contextlib.suppress(OSError):
                    raw = termination.read_bytes()[-TERMINATION_MESSAGE_LIMIT:]
                    message = raw.decode(errors="replace").strip() or None
            if exit_code == 0:
                break
        return exit_code, message, None
