"""The fallback runner: a phase attempt as a process of the operator's own pod.

Only the built-in worker of the operator's own image runs here (`collectionflow worker`, never
a flow's own image, command or arguments: `controller.runs` sends those to a Job or fails them),
and only when the operator's setting allows it. Its environment is built from nothing: the
worker contract's variables and a bare PATH, HOME and locale; no database URL, no kubeconfig,
no token path, no operator setting. Its heartbeat is a file this process reads (published to
the cache as the attempt's Lease), its result the termination-message file; the phase's
`activeDeadlineSeconds` and `backoffLimit` apply. At most `in_process_limit` run at once; the
rest wait their turn. The attempt is reported through Job-shaped bodies in the watch cache
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

from collectionflow.api.contract import (
    ENV_HEARTBEAT_FILE,
    ENV_HEARTBEAT_LEASE,
    ENV_HEARTBEAT_SECONDS,
    ENV_TERMINATION_MESSAGE_PATH,
)
from collectionflow.api.kube import micro_time
from collectionflow.domain.cache import WatchCache
from collectionflow.domain.results import TERMINATION_MESSAGE_LIMIT
from collectionflow.specs.inprocess import finished_bodies, in_process_uid, running_bodies

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

    @property
    def running(self) -> int:
        """Phases in this process now, running or waiting their turn."""
        return len(self._tasks)

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
        """Run the built-in worker up to backoffLimit + 1 times within the deadline."""
        container = spec["template"]["spec"]["containers"][0]
        contract = contract_environment(container)
        interval = float(contract.get(ENV_HEARTBEAT_SECONDS) or 10)
        deadline = asyncio.get_running_loop().time() + float(
            spec.get("activeDeadlineSeconds") or 3600
        )
        exit_code, message = 1, None
        for _ in range(int(spec.get("backoffLimit") or 0) + 1):
            with tempfile.TemporaryDirectory(prefix="cf-inprocess-") as workdir:
                termination = Path(workdir) / "termination-log"
                beats = Path(workdir) / "heartbeat"
                env = {
                    **contract,
                    "PATH": "/usr/local/bin:/usr/bin:/bin",
                    "HOME": workdir,
                    "TMPDIR": workdir,
                    "LANG": "C.UTF-8",
                    "HOSTNAME": f"{key[1]}-inprocess",
                    ENV_HEARTBEAT_FILE: str(beats),
                    ENV_TERMINATION_MESSAGE_PATH: str(termination),
                }
                process = await asyncio.create_subprocess_exec(
                    *WORKER_ARGV, env=env, cwd=workdir, stdin=asyncio.subprocess.DEVNULL
                )
                watcher = asyncio.create_task(self._follow_beats(key, beats, interval))
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
                finally:
                    watcher.cancel()
                with contextlib.suppress(OSError):
                    raw = termination.read_bytes()[-TERMINATION_MESSAGE_LIMIT:]
                    message = raw.decode(errors="replace").strip() or None
            if exit_code == 0:
                break
        return exit_code, message, None

    async def _follow_beats(self, key: tuple[str, str], beats: Path, interval: float) -> None:
        """Publish the worker's heartbeat file to the cache as the attempt's Lease, owned by
        the attempt's Job-shaped body and held by its pod, as a Job's worker would write it."""
        namespace, name = key
        seen = None
        while True:
            await asyncio.sleep(max(interval / 2, 0.2))
            with contextlib.suppress(OSError, ValueError):
                stamp = os.stat(beats).st_mtime  # a local file's inode: no I/O wait
                if stamp != seen:
                    seen = stamp
                    renewed = dt.datetime.fromtimestamp(stamp, dt.UTC)
                    self.cache.observe_lease(None, in_process_lease(namespace, name, renewed))


WORKER_ARGV = (sys.executable, "-m", "collectionflow", "worker")


def contract_environment(container: dict[str, Any]) -> dict[str, str]:
    """The worker contract's variables from the Job's container, and nothing else: a phase's
    own `env` never reaches the operator's process, nor does the Lease name (its heartbeat is a
    file here)."""
    return {
        var["name"]: var["value"]
        for var in container.get("env") or []
        if "value" in var
        and var["name"].startswith("COLLECTIONFLOW_")
        and var["name"] != ENV_HEARTBEAT_LEASE
    }


def in_process_lease(namespace: str, name: str, renewed: dt.datetime) -> dict[str, Any]:
    """The Lease-shaped heartbeat of an in-process attempt (`domain.runner` names its bodies)."""
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "ownerReferences": [{"uid": in_process_uid(namespace, name)}],
        },
        "spec": {"holderIdentity": f"{name}-inprocess", "renewTime": micro_time(renewed)},
    }
