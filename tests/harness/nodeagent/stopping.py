"""Stopping a pod's containers as a kubelet does: SIGTERM to each process group, SIGKILL to
what is left when the grace period is over, then each exit collected."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Sequence

from harness.nodeagent.container import Container
from harness.nodeagent.kube import AgentKilled
from harness.nodeagent.processes import ProcessTable

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


def stop_containers(
    containers: Sequence[Container],
    processes: ProcessTable,
    grace: float,
    killed: Callable[[], bool],
    log: Log,
    collect: Callable[[Container, int], None],
) -> None:
    """Stop the running ones of `containers` within `grace` seconds (then by force)."""
    running = [c for c in containers if c.proc is not None]
    if not running:
        return
    log.info(
        "stopping containers %s: SIGTERM, SIGKILL after %gs",
        ", ".join(c.name for c in running),
        grace,
    )
    for container in running:
        assert container.proc is not None
        processes.signal(container.proc, signal.SIGTERM)
    _await(running, grace, killed)
    for container in running:
        if container.proc is not None and container.proc.returncode is None:
            log.info("container %s: grace period over, SIGKILL", container.name)
            processes.signal(container.proc, signal.SIGKILL)
    _await(running, 10.0, killed)
    for container in running:
        if container.proc is None:
            continue
        if container.proc.returncode is None:
            log.error("container %s survived SIGKILL", container.name)
            continue
        collect(container, container.proc.returncode)


def _await(containers: Sequence[Container], timeout: float, killed: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(
        c.proc is not None and c.proc.returncode is None for c in containers
    ):
        if killed():
            raise AgentKilled
        time.sleep(0.05)
