"""One pod's lifecycle on the node, from first sight until it is finished or deleted.

A :class:`PodWorker` thread owns one pod bound to this node: it starts the containers,
collects their exits, applies the restart policy and ``activeDeadlineSeconds``, reports the
pod status, and carries out graceful deletion. It reaches the rest of the agent only through
:class:`PodHost`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Final

from urllib3.exceptions import HTTPError

from harness.images.store import VolumeNotReady, prepare_volumes
from harness.nodeagent.container import (
    Container,
    StartError,
    launch,
    shown_command,
)
from harness.nodeagent.host import PodHost, PodLogger
from harness.nodeagent.identity import NotReady, PodIdentity
from harness.nodeagent.kube import AgentKilled, KubeApiError
from harness.nodeagent.model import ContainerConfigError, JsonDict, resolve_env
from harness.nodeagent.node import NODE_IP
from harness.nodeagent.processes import signal_group
from harness.nodeagent.status import (
    TERMINAL_PHASES,
    PodFailure,
    Running,
    Terminated,
    Waiting,
    build_pod_status,
    grace_period,
    parse_timestamp,
    restart_delay,
    should_restart,
)
from harness.nodeagent.stopping import stop_containers

logger = logging.getLogger("harness.nodeagent")

SHUTDOWN_REASON: Final = "Shutdown"
SHUTDOWN_MESSAGE: Final = "The local node agent was stopped; the pod's processes were terminated."
DEADLINE_MESSAGE: Final = "Pod was active on the node longer than the specified deadline"


class PodWorker:
    """Owns one pod bound to this node, from first sight until it is finished or deleted."""

    def __init__(self, agent: PodHost, pod: JsonDict) -> None:
        metadata = pod["metadata"]
        self.agent = agent
        self.uid = str(metadata["uid"])
        self.namespace = str(metadata["namespace"])
        self.name = str(metadata["name"])
        self.log = PodLogger(logger, f"{self.namespace}/{self.name}")
        self.dir = agent.pods_dir / f"{self.namespace}_{self.name}_{self.uid}"
        spec = pod.get("spec") or {}
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.containers = [agent.container(c) for c in spec.get("containers") or []]
        self.volume_dirs: dict[str, Path] | None = None
        self.start_time = dt.datetime.now(dt.UTC)
        self.failure: PodFailure | None = None
        self.reported: JsonDict | None = None
        self.identity = PodIdentity(agent.api, self.dir, self.namespace)
        self._pod = pod
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._removed = False
        self.thread = threading.Thread(
            target=self._run, name=f"pod-{self.namespace}/{self.name}", daemon=True
        )

    # -- called from other threads

    @property
    def pod(self) -> JsonDict:
        with self._lock:
            return self._pod

    def update(self, pod: JsonDict) -> None:
        with self._lock:
            self._pod = pod
        self._wake.set()

    def removed(self) -> None:
        self._removed = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # -- the worker thread

    def _run(self) -> None:
        try:
            self._restore(self.pod)
            while not self.agent.killed:
                self._wake.clear()  # before looking: a wake-up from now on is not lost
                pod = self.pod
                if self._removed:
                    self.log.info("the pod object is gone; stopping its processes")
                    self._terminate(2.0)
                    return
                if self.agent.stopping:
                    self._shutdown(pod)
                    return
                if (pod.get("metadata") or {}).get("deletionTimestamp"):
                    self._delete(pod)
                    return
                try:
                    self._sync(pod)
                    self._report(pod)
                except (AgentKilled, KeyboardInterrupt):
                    raise
                except (KubeApiError, HTTPError, OSError) as error:
                    self.log.warning("sync failed (%s); retrying", error)
                    self._wake.wait(1.0)
                except Exception:
                    self.log.exception("sync failed; retrying")
                    self._wake.wait(1.0)
                if self._finished():
                    self.log.info(
                        "finished with phase %s", self.reported and self.reported["phase"]
                    )
                    return
                self._wait()
        except AgentKilled:
            return
        except Exception:
            self.log.exception("pod worker failed")
        finally:
            self.agent.worker_done(self)

    def _wait(self) -> None:
        timeout = 1.0
        now = time.monotonic()
        for container in self.containers:
            if container.proc is None and container.not_before > now:
                timeout = min(timeout, container.not_before - now)
        self._wake.wait(max(0.02, timeout))

    def _restore(self, pod: JsonDict) -> None:
        """Take over what an earlier agent reported: restart counts, states, start time."""
        status = pod.get("status") or {}
        started = parse_timestamp(status.get("startTime"))
        if started is not None:
            self.start_time = started
        previous = {str(s.get("name")): s for s in status.get("containerStatuses") or []}
        now = dt.datetime.now(dt.UTC)
        for container in self.containers:
            reported = previous.get(container.name)
            if reported and container.restore(reported, now):
                self.log.warning(
                    "container %s was running under an earlier node agent; its process is gone",
                    container.name,
                )
        self.log.info(
            "picked up (phase %s, restartPolicy %s)", status.get("phase"), self.restart_policy
        )

    def _sync(self, pod: JsonDict) -> None:
        spec = pod.get("spec") or {}
        deadline = spec.get("activeDeadlineSeconds")
        if self.failure is None and deadline is not None:
            elapsed = (dt.datetime.now(dt.UTC) - self.start_time).total_seconds()
            if elapsed >= float(deadline):
                self.log.info("activeDeadlineSeconds=%s exceeded; stopping the pod", deadline)
                self._terminate(grace_period(pod))
                self.failure = PodFailure("DeadlineExceeded", DEADLINE_MESSAGE)
        if self.failure is not None:
            return
        if spec.get("initContainers"):
            for container in self.containers:
                self._problem(
                    container,
                    "CreateContainerConfigError",
                    "init containers are not supported by the local node agent",
                )
            return
        for container in self.containers:
            self._sync_container(container, pod)

    def _sync_container(self, container: Container, pod: JsonDict) -> None:
        if container.proc is not None:
            code = container.proc.returncode  # set by _await_exit, the one thread that reaps
            if code is None:
                return
            self._collect(container, code)
        if isinstance(container.state, Terminated):
            if not should_restart(self.restart_policy, container.state.exit_code):
                return
            container.last_state = container.state
            delay = restart_delay(
                container.restart_count,
                self.agent.config.restart_backoff_seconds,
                self.agent.config.restart_backoff_max_seconds,
            )
            container.not_before = time.monotonic() + delay
            container.state = Waiting(
                "CrashLoopBackOff",
                f"back-off {delay:g}s restarting failed container={container.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
        if container.match is None and container.local is None:
            self._image_not_available(container)
            return
        if time.monotonic() < container.not_before:
            return
        self._start(container, pod)

    def _image_not_available(self, container: Container) -> None:
        problem = container.pull_problem(
            time.monotonic(),
            self.agent.config.known_images,
            self.agent.config.image_pull_backoff_seconds,
        )
        if problem is not None:
            self._problem(container, *problem)

    def _problem(self, container: Container, reason: str, message: str) -> None:
        """Keep the container waiting with this reason; log each new problem once."""
        if container.problem(reason, message):
            self.log.warning("container %s: %s: %s", container.name, reason, message)

    def _start(self, container: Container, pod: JsonDict) -> None:
        agent = self.agent
        config = agent.config
        try:
            kubeconfig = self.identity.kubeconfig(pod)
            if container.local is not None and self.volume_dirs is None:
                self.volume_dirs = prepare_volumes(pod, self.dir, agent.api.env_sources.secret)
        except (NotReady, VolumeNotReady) as waiting:
            self._problem(container, "ContainerCreating", str(waiting))
            return
        container_dir = self.dir / "containers" / container.name
        termination_file = container_dir / "termination-log"
        try:
            defined = resolve_env(
                pod,
                container.spec,
                agent.api.env_sources,
                service_env=config.service_env,
                pod_ip=NODE_IP,
            )
            argv, env, cwd = launch(
                container,
                pod,
                defined,
                kubeconfig,
                termination_file,
                self.dir,
                self.volume_dirs,
                config,
            )
        except ContainerConfigError as error:
            container.not_before = time.monotonic() + 1.0
            self._problem(container, "CreateContainerConfigError", str(error))
            return
        except StartError as error:
            self._start_failed(container, str(error))
            return
        if container.has_run:
            container.restart_count += 1
        container.has_run = True
        container_dir.mkdir(parents=True, exist_ok=True)
        termination_file.write_bytes(b"")
        termination_file.chmod(0o666)  # as the kubelet makes it: the container may be non-root
        log_path = container_dir / f"{container.restart_count}.log"
        try:
            process = agent.processes.spawn(argv, cwd=cwd, env=env, log_path=log_path)
        except OSError as error:  # as a runtime that cannot start the process says it
            self._start_failed(container, f"failed to start container process: {error}")
            return
        container.proc = process
        container.log_path = log_path
        container.termination_file = termination_file
        container.container_id = f"nodeagent://{self.uid}/{container.name}/{process.pid}"
        container.state = Running(dt.datetime.now(dt.UTC))
        container.reported_problem = None
        threading.Thread(
            target=self._await_exit,
            args=(process,),
            name=f"wait-{self.namespace}/{self.name}/{container.name}",
            daemon=True,
        ).start()
        self.log.info(
            "container %s started (pid %d, restart %d%s): %s; log %s",
            container.name,
            process.pid,
            container.restart_count,
            f", image {container.local.reference}" if container.local else "",
            shown_command(container, argv),
            log_path,
        )

    def _await_exit(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for a container's shim, kill what the container left behind, then reap it.

        Until it is reaped, the exited shim keeps its process-group id from being reused, so
        this SIGKILL (and the one of NodeAgent.kill) cannot hit an unrelated process.
        """
        waitid = getattr(os, "waitid", None)
        if waitid is not None:
            with contextlib.suppress(ChildProcessError):
                waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            signal_group(process.pid, signal.SIGKILL)
        self.agent.processes.forget(process)
        with contextlib.suppress(ChildProcessError):
            process.wait()
        self._wake.set()

    def _start_failed(self, container: Container, message: str) -> None:
        container.start_failed(message, dt.datetime.now(dt.UTC))
        self.log.warning("container %s could not start: %s", container.name, message)

    def _collect(self, container: Container, code: int) -> None:
        """Record the exit of a container's process."""
        exit_code = container.collect(code, dt.datetime.now(dt.UTC))
        self.log.info("container %s exited with code %d", container.name, exit_code)

    def _terminate(self, grace: float) -> None:
        """SIGTERM the running containers' process groups, SIGKILL them after ``grace``."""
        stop_containers(
            self.containers,
            self.agent.processes,
            grace,
            lambda: self.agent.killed,
            self.log,
            self._collect,
        )

    def _delete(self, pod: JsonDict) -> None:
        """Graceful deletion: stop the processes, report, then remove the object."""
        grace = grace_period(pod)
        self.log.info("is being deleted (grace period %gs)", grace)
        self._terminate(grace)
        try:
            self._report(pod)
        except AgentKilled:
            raise
        except Exception as error:
            self.log.warning("could not report the final status: %s", error)
        self.agent.api.delete_pod(self.namespace, self.name, self.uid)

    def _shutdown(self, pod: JsonDict) -> None:
        if self._finished():
            return
        self._terminate(min(grace_period(pod), self.agent.config.stop_grace_seconds))
        if self.failure is None:
            self.failure = PodFailure(SHUTDOWN_REASON, SHUTDOWN_MESSAGE)
        self._report(pod)

    def _finished(self) -> bool:
        """The pod reached a terminal phase, reported it, and runs no process any more."""
        return (
            self.reported is not None
            and self.reported.get("phase") in TERMINAL_PHASES
            and all(c.proc is None for c in self.containers)
        )

    def _report(self, pod: JsonDict) -> None:
        status = build_pod_status(
            containers=[c.status() for c in self.containers],
            restart_policy=self.restart_policy,
            start_time=self.start_time,
            now=dt.datetime.now(dt.UTC),
            host_ip=NODE_IP,
            pod_ip=NODE_IP,
            failure=self.failure,
            previous=self.reported if self.reported is not None else pod.get("status"),
        )
        if status == self.reported:
            return
        try:
            self.agent.api.patch_pod_status(self.namespace, self.name, self.uid, status)
        except KubeApiError as error:
            if error.status == 404:
                self._removed = True
                return
            raise
        before = (self.reported or pod.get("status") or {}).get("phase")
        if before != status["phase"]:
            self.log.info("phase %s -> %s", before, status["phase"])
        self.reported = status
