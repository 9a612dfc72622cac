"""A local node agent: a minimal kubelet (and scheduler) for the loopback test control plane.

Why it exists: the tests run a real kube-apiserver and kube-controller-manager (see
:mod:`harness.controlplane`), but these machines have no container runtime, so nothing would
ever run a pod. This agent is the cluster's one node. It registers a Node and heart-beats it,
binds pending pods to it, and runs the containers of *our own image* as local processes, with
what a kubelet would give them: the container's environment (literal, Secret, ConfigMap and
downward-API values), the pod's ServiceAccount identity (a per-pod ``KUBECONFIG`` with the
ServiceAccount token, so RBAC applies to the process), a termination-message file
(``TERMINATION_MESSAGE_PATH``) read back into the container status, restart policies,
``activeDeadlineSeconds`` and graceful deletion. It reports pod status through the
``pods/status`` subresource the way a kubelet does, so the real Job, ReplicaSet and
garbage-collector controllers act on it. Images it does not know stay in ``ErrImagePull`` /
``ImagePullBackOff``.

Processes: every container runs as ``command`` + ``args`` in its own process group (cwd a
per-pod directory under the workdir, output to a log file per container run), behind a tiny
Python shim that kills the whole group when the agent dies - also when the agent process is
SIGKILLed - so a lost agent means lost pods, as with a lost node. A new agent on the same node
name marks the pods whose processes died with the old one as terminated (exit code 137, reason
``NodeAgentRestarted``) and then applies the pod's restart policy.

Not supported: init containers, probes, volumes (beyond the ServiceAccount token), resource
limits, ``resourceFieldRef``, affinity and taints (``nodeSelector`` is honoured), events.

The pure rules live in :mod:`harness.nodeagent_model`; this module does the I/O.
Run as a process: ``python -m harness.nodeagent --kubeconfig K --node-name N --workdir D
--image collectionflow-operator``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from urllib3.exceptions import HTTPError

from harness.image_model import (
    LocalImage,
    find_local_image,
    image_argv,
    image_env,
    read_only_root,
    run_as,
    volume_mounts,
    working_dir,
)
from harness.images import VolumeNotReady, find_executable, prepare_image, prepare_volumes
from harness.lifecycle import Service
from harness.nodeagent_model import (
    DEFAULT_SCHEDULER,
    TERMINAL_PHASES,
    ContainerConfigError,
    ContainerStatus,
    ImageMatch,
    JsonDict,
    PodFailure,
    Running,
    Terminated,
    Waiting,
    build_kubeconfig,
    build_pod_status,
    container_argv,
    match_image,
    parse_timestamp,
    resolve_env,
    restart_delay,
    service_account_name,
    service_env,
    should_restart,
    termination_message,
    timestamp,
)

logger = logging.getLogger(__name__)

NODE_IP: Final = "127.0.0.1"
MERGE_PATCH: Final = "application/merge-patch+json"
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
DEFAULT_CAPACITY: Final[Mapping[str, str]] = {"cpu": "8", "memory": "32Gi", "pods": "500"}
DEFAULT_GRACE_SECONDS: Final = 30.0
# Environment the processes inherit from the agent (a container gets its image's environment,
# not the host's); coverage.py's subprocess variables are passed on as well.
INHERITED_ENV: Final = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")
INHERITED_ENV_PREFIXES: Final = ("COV_CORE_", "COVERAGE_")
RESTARTED_REASON: Final = "NodeAgentRestarted"
RESTARTED_MESSAGE: Final = (
    "The local node agent was restarted; the container's process did not survive it."
)
SHUTDOWN_REASON: Final = "Shutdown"
SHUTDOWN_MESSAGE: Final = "The local node agent was stopped; the pod's processes were terminated."
IMAGE_ENTER: Final = Path(__file__).with_name("image_enter.py")
DEADLINE_MESSAGE: Final = "Pod was active on the node longer than the specified deadline"

# Runs every container: starts the command in the shim's process group (a session of its own,
# created by the agent), passes on its exit status, and SIGKILLs the group when the pipe from
# the agent reports end-of-file, i.e. when the agent is gone, however it went.
_SHIM: Final = r"""
import os, signal, subprocess, sys, threading
fd = int(sys.argv[1])
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(signum, lambda *_: None)
try:
    child = subprocess.Popen(sys.argv[2:])
except OSError as error:
    sys.stderr.write(f"nodeagent: cannot run {sys.argv[2]!r}: {error}\n")
    sys.stderr.flush()
    os._exit(127)
def watch():
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
    os.killpg(0, signal.SIGKILL)
threading.Thread(target=watch, daemon=True).start()
code = child.wait()
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
os._exit(code if code >= 0 else 128 - code)
"""


class KubeApiError(Exception):
    """A non-2xx answer of the apiserver."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class _AgentKilled(Exception):
    """Raised by a write attempted after :meth:`NodeAgent.kill`: the agent must stay silent."""


class _WriteGate:
    """Lets API writes run concurrently until closed; closing waits for those in flight."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._closed = False

    @contextlib.contextmanager
    def open(self) -> Iterator[None]:
        with self._condition:
            if self._closed:
                raise _AgentKilled
            self._active += 1
        try:
            yield
        finally:
            with self._condition:
                self._active -= 1
                self._condition.notify_all()

    def close(self, timeout: float) -> None:
        with self._condition:
            self._closed = True
            self._condition.wait_for(lambda: self._active == 0, timeout)


class _StartError(Exception):
    """The container's process could not be started (kubelet: StartError, exit code 128)."""


class _NotReady(Exception):
    """A precondition of starting a container is not there yet; retried later."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro_timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tail(path: Path | None, size: int) -> bytes:
    """The last ``size`` bytes of a file, b"" when it does not exist."""
    if path is None:
        return b""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read()
    except OSError:
        return b""


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _which(command: str, path: str, cwd: Path) -> str | None:
    if os.sep in command:
        candidate = command if os.path.isabs(command) else str(cwd / command)
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(command, path=path)


def parse_image_option(value: str) -> tuple[str, tuple[str, ...] | None]:
    """``NAME`` or ``NAME=ENTRYPOINT`` (shell-split) of the ``--image`` option."""
    name, sep, entrypoint = value.partition("=")
    if not name:
        raise ValueError(f"--image {value!r}: the image name is empty")
    return name, (tuple(shlex.split(entrypoint)) if sep else None)


class _PodLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the pod, ``pod <namespace>/<name>: ...``."""

    def __init__(self, base: logging.Logger, pod: str) -> None:
        super().__init__(base, {"pod": pod})
        self.pod = pod

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"pod {self.pod}: {msg}", kwargs


# --------------------------------------------------------------------------------------------
# A small JSON client on top of the kubernetes package's ApiClient (transport, TLS, auth).


class _Kube:
    def __init__(self, kubeconfig: Path, request_timeout: float) -> None:
        configuration = Configuration()
        configuration.connection_pool_maxsize = 64  # one connection per busy pod thread
        kube_config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration, persist_config=False
        )
        self.configuration = configuration
        self.api = ApiClient(configuration)
        self.request_timeout = request_timeout
        self.server: str = str(configuration.host)
        self.insecure = not configuration.verify_ssl
        self.ca_data: bytes | None = None
        if configuration.ssl_ca_cert:
            self.ca_data = Path(str(configuration.ssl_ca_cert)).read_bytes()
        elif configuration.ca_cert_data:
            data = configuration.ca_cert_data
            self.ca_data = data.encode() if isinstance(data, str) else bytes(data)
        self._watches: set[Any] = set()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.interrupt_watches()
        self.api.close()

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: object,
        content_type: str,
        timeout: float | tuple[float, float],
    ) -> Any:
        serialized = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.api.call_api(*serialized, _request_timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: object = None,
        content_type: str = "application/json",
    ) -> JsonDict:
        response = self._call(method, path, query, body, content_type, self.request_timeout)
        data: bytes = response.read()
        if not 200 <= response.status < 300:
            raise KubeApiError(int(response.status), _error_message(data))
        if not data:
            return {}
        result: JsonDict = json.loads(data)
        return result

    def get(self, path: str, query: Mapping[str, str] | None = None) -> JsonDict | None:
        """GET, None on 404."""
        try:
            return self.request("GET", path, query=query)
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    def watch(
        self, path: str, query: Mapping[str, str], timeout_seconds: int
    ) -> Iterator[JsonDict]:
        """The events of a watch that the apiserver ends after ``timeout_seconds``."""
        query = {
            **query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        response = self._call(
            "GET",
            path,
            query,
            None,
            "application/json",
            (self.request_timeout, timeout_seconds + 15),
        )
        raw = response.response
        if response.status != 200:
            raise KubeApiError(int(response.status), _error_message(response.read()))
        with self._lock:
            self._watches.add(raw)
        try:
            buffer = b""
            for chunk in raw.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event: JsonDict = json.loads(line)
                        yield event
        finally:
            with self._lock:
                self._watches.discard(raw)
            raw.close()
            raw.release_conn()

    def interrupt_watches(self) -> None:
        with self._lock:
            watches = list(self._watches)
        for raw in watches:
            with contextlib.suppress(Exception):
                raw.shutdown()


def _error_message(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return data.decode("utf-8", errors="replace")[:500]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body)
    return str(body)


class _ApiEnvSources:
    """Secrets and ConfigMaps for :func:`resolve_env`, read from the apiserver."""

    def __init__(self, kube: _Kube) -> None:
        self._kube = kube

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        secret = self._kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            return None
        return {
            key: base64.b64decode(value).decode("utf-8", errors="replace")
            for key, value in (secret.get("data") or {}).items()
        }

    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None:
        config_map = self._kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        if config_map is None:
            return None
        return {key: str(value) for key, value in (config_map.get("data") or {}).items()}


# --------------------------------------------------------------------------------------------
# Pods


class _Container:
    """The runtime state of one container of a pod."""

    def __init__(self, spec: JsonDict, match: ImageMatch | None, local: LocalImage | None) -> None:
        self.spec = spec
        self.name = str(spec.get("name", ""))
        self.image = str(spec.get("image", ""))
        self.match = match
        self.local = local
        self.state: Waiting | Running | Terminated = Waiting("ContainerCreating")
        self.restart_count = 0
        self.last_state: Terminated | None = None
        self.has_run = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.container_id: str | None = None
        self.not_before = 0.0
        self.pull_failed_at: float | None = None
        self.log_path: Path | None = None
        self.termination_file: Path | None = None
        self.reported_problem: str | None = None

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            name=self.name,
            image=self.image,
            state=self.state,
            restart_count=self.restart_count,
            last_state=self.last_state,
            container_id=self.container_id,
            image_id=self._image_id() if self.has_run else "",
        )

    def _image_id(self) -> str:
        """Which image ran: the built image's ID, or the venv."""
        if self.local is not None:
            return f"local://{self.local.reference}@{self.local.image_id}"
        return f"nodeagent://{self.image}"


def _terminated_from_json(value: object) -> Terminated | None:
    if not isinstance(value, dict):
        return None
    return Terminated(
        exit_code=int(value.get("exitCode", 0)),
        reason=str(value.get("reason") or ""),
        finished_at=parse_timestamp(value.get("finishedAt")) or _utcnow(),
        started_at=parse_timestamp(value.get("startedAt")),
        message=value.get("message"),
        container_id=value.get("containerID"),
    )


class _PodWorker:
    """Owns one pod bound to this node, from first sight until it is finished or deleted."""

    def __init__(self, agent: NodeAgent, pod: JsonDict) -> None:
        metadata = pod["metadata"]
        self.agent = agent
        self.uid = str(metadata["uid"])
        self.namespace = str(metadata["namespace"])
        self.name = str(metadata["name"])
        self.log = _PodLogger(logger, f"{self.namespace}/{self.name}")
        self.dir = agent.pods_dir / f"{self.namespace}_{self.name}_{self.uid}"
        spec = pod.get("spec") or {}
        self.restart_policy = str(spec.get("restartPolicy") or "Always")
        self.containers = [agent.container(c) for c in spec.get("containers") or []]
        self.volume_dirs: dict[str, Path] | None = None
        self.start_time = _utcnow()
        self.failure: PodFailure | None = None
        self.reported: JsonDict | None = None
        self.kubeconfig: Path | None = None
        self.identity_not_before = 0.0
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
                except (_AgentKilled, KeyboardInterrupt):
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
        except _AgentKilled:
            return
        except Exception:
            self.log.exception("pod worker failed")
        finally:
            self.agent._worker_done(self)

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
        now = _utcnow()
        for container in self.containers:
            reported = previous.get(container.name)
            if not reported:
                continue
            container.restart_count = int(reported.get("restartCount") or 0)
            container.container_id = reported.get("containerID")
            container.last_state = _terminated_from_json(
                (reported.get("lastState") or {}).get("terminated")
            )
            state = reported.get("state") or {}
            if state.get("running") is not None:
                container.has_run = True
                container.state = Terminated(
                    exit_code=137,
                    reason=RESTARTED_REASON,
                    finished_at=now,
                    started_at=parse_timestamp(state["running"].get("startedAt")),
                    message=RESTARTED_MESSAGE,
                    container_id=container.container_id,
                )
                self.log.warning(
                    "container %s was running under an earlier node agent; its process is gone",
                    container.name,
                )
            elif state.get("terminated"):
                container.has_run = True
                container.state = _terminated_from_json(state["terminated"]) or container.state
            elif container.last_state is not None:
                container.has_run = True
        self.log.info(
            "picked up (phase %s, restartPolicy %s)", status.get("phase"), self.restart_policy
        )

    def _sync(self, pod: JsonDict) -> None:
        spec = pod.get("spec") or {}
        deadline = spec.get("activeDeadlineSeconds")
        if self.failure is None and deadline is not None:
            elapsed = (_utcnow() - self.start_time).total_seconds()
            if elapsed >= float(deadline):
                self.log.info("activeDeadlineSeconds=%s exceeded; stopping the pod", deadline)
                self._terminate(self._grace(pod))
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

    def _sync_container(self, container: _Container, pod: JsonDict) -> None:
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
                self.agent.restart_backoff_seconds,
                self.agent.restart_backoff_max_seconds,
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

    def _image_not_available(self, container: _Container) -> None:
        now = time.monotonic()
        known = ", ".join(self.agent.known_images()) or "none"
        detail = (
            f'image "{container.image}" is not available to the local node agent '
            f"(it runs only: {known})"
        )
        if container.pull_failed_at is None:
            container.pull_failed_at = now
            self._problem(container, "ErrImagePull", detail)
        elif now - container.pull_failed_at >= self.agent.image_pull_backoff_seconds:
            self._problem(
                container,
                "ImagePullBackOff",
                f'Back-off pulling image "{container.image}": {detail}',
            )

    def _problem(self, container: _Container, reason: str, message: str) -> None:
        """Keep the container waiting with this reason; log each new problem once."""
        container.state = Waiting(reason, message)
        if container.reported_problem != f"{reason}: {message}":
            container.reported_problem = f"{reason}: {message}"
            self.log.warning("container %s: %s: %s", container.name, reason, message)

    def _start(self, container: _Container, pod: JsonDict) -> None:
        agent = self.agent
        try:
            kubeconfig = self._identity(pod)
            if container.local is not None and self.volume_dirs is None:
                self.volume_dirs = prepare_volumes(pod, self.dir, _ApiEnvSources(agent.kube).secret)
        except (_NotReady, VolumeNotReady) as waiting:
            self._problem(container, "ContainerCreating", str(waiting))
            return
        container_dir = self.dir / "containers" / container.name
        termination_file = container_dir / "termination-log"
        try:
            defined = resolve_env(
                pod,
                container.spec,
                _ApiEnvSources(agent.kube),
                service_env=agent.service_env,
                pod_ip=NODE_IP,
            )
            if container.local is not None:
                argv, env, cwd = self._image_launch(container, pod, defined, termination_file)
            else:
                argv, env, cwd = self._venv_launch(container, defined, kubeconfig, termination_file)
        except ContainerConfigError as error:
            container.not_before = time.monotonic() + 1.0
            self._problem(container, "CreateContainerConfigError", str(error))
            return
        except _StartError as error:
            self._start_failed(container, str(error))
            return
        if container.has_run:
            container.restart_count += 1
        container.has_run = True
        container_dir.mkdir(parents=True, exist_ok=True)
        termination_file.write_bytes(b"")
        termination_file.chmod(0o666)  # as the kubelet makes it: the container may be non-root
        log_path = container_dir / f"{container.restart_count}.log"
        process = agent._spawn(argv, cwd=cwd, env=env, log_path=log_path)
        container.proc = process
        container.log_path = log_path
        container.termination_file = termination_file
        container.container_id = f"nodeagent://{self.uid}/{container.name}/{process.pid}"
        container.state = Running(_utcnow())
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
            shlex.join(json.loads(argv[-1])["argv"] if container.local else argv),
            log_path,
        )

    def _venv_launch(
        self, container: _Container, defined: Mapping[str, str], kubeconfig: Path, termination: Path
    ) -> tuple[list[str], dict[str, str], Path]:
        """A host process from the test venv, with the pod's identity as its ``KUBECONFIG``."""
        agent = self.agent
        env = {
            **agent.base_env,
            **agent.service_env,
            "HOSTNAME": self.name,
            **defined,
            "KUBECONFIG": str(kubeconfig),
            "TERMINATION_MESSAGE_PATH": str(termination),
        }
        cwd = self.dir / "fs"
        assert container.match is not None
        argv = container_argv(
            container.spec, container.match.entrypoint, {**agent.service_env, **defined}
        )
        if _which(argv[0], env.get("PATH", ""), cwd) is None:
            raise _StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
        return argv, env, cwd

    def _image_launch(
        self, container: _Container, pod: JsonDict, defined: Mapping[str, str], termination: Path
    ) -> tuple[list[str], dict[str, str], Path]:
        """The image's filesystem, entered by :mod:`harness.image_enter` as a runtime would."""
        image = container.local
        assert image is not None
        assert self.volume_dirs is not None
        service_env = self.agent.service_env
        env = image_env(image.config, service_env, self.name, defined)
        passwd = image.rootfs / "etc" / "passwd"
        uid, gid = run_as(
            pod, container.spec, image.config, passwd.read_text() if passwd.exists() else ""
        )
        argv = image_argv(container.spec, image.config, {**service_env, **defined})
        if find_executable(image.rootfs, argv[0], env.get("PATH", "")) is None:
            raise _StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
        layer = termination.parent / "rootfs"
        for part in ("upper", "work", "root"):
            (layer / part).mkdir(parents=True, exist_ok=True)
        spec = {
            "lower": str(image.rootfs),
            "upper": str(layer / "upper"),
            "work": str(layer / "work"),
            "root": str(layer / "root"),
            "readonly": read_only_root(container.spec),
            "mounts": [
                m.as_json() for m in volume_mounts(container.spec, self.volume_dirs, termination)
            ],
            "uid": uid,
            "gid": gid,
            "cwd": working_dir(container.spec, image.config),
            "argv": argv,
            "env": env,
        }
        command = [sys.executable, "-I", "-S", str(IMAGE_ENTER), json.dumps(spec)]
        return command, {"PATH": os.defpath}, self.dir

    def _await_exit(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for a container's shim, kill what the container left behind, then reap it.

        Until it is reaped, the exited shim keeps its process-group id from being reused, so
        this SIGKILL (and the one of NodeAgent.kill) cannot hit an unrelated process.
        """
        waitid = getattr(os, "waitid", None)
        if waitid is not None:
            with contextlib.suppress(ChildProcessError):
                waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
            _signal_group(process.pid, signal.SIGKILL)
        self.agent._forget(process)
        with contextlib.suppress(ChildProcessError):
            process.wait()
        self._wake.set()

    def _start_failed(self, container: _Container, message: str) -> None:
        if container.has_run:
            container.restart_count += 1
        container.has_run = True
        now = _utcnow()
        container.state = Terminated(
            exit_code=128, reason="StartError", finished_at=now, started_at=now, message=message
        )
        self.log.warning("container %s could not start: %s", container.name, message)

    def _collect(self, container: _Container, code: int) -> None:
        """Record the exit of a container's process."""
        container.proc = None
        exit_code = code if code >= 0 else 128 - code
        started_at = container.state.started_at if isinstance(container.state, Running) else None
        message = termination_message(
            _tail(container.termination_file, 4096),
            _tail(container.log_path, 16384),
            container.spec.get("terminationMessagePolicy"),
            exit_code,
        )
        container.state = Terminated(
            exit_code=exit_code,
            reason="Completed" if exit_code == 0 else "Error",
            finished_at=_utcnow(),
            started_at=started_at,
            message=message,
            container_id=container.container_id,
        )
        self.log.info("container %s exited with code %d", container.name, exit_code)

    def _grace(self, pod: JsonDict) -> float:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        for value in (
            metadata.get("deletionGracePeriodSeconds"),
            spec.get("terminationGracePeriodSeconds"),
        ):
            if value is not None:
                return float(value)
        return DEFAULT_GRACE_SECONDS

    def _terminate(self, grace: float) -> None:
        """SIGTERM the running containers' process groups, SIGKILL them after ``grace``."""
        running = [c for c in self.containers if c.proc is not None]
        if not running:
            return
        self.log.info(
            "stopping containers %s: SIGTERM, SIGKILL after %gs",
            ", ".join(c.name for c in running),
            grace,
        )
        for container in running:
            assert container.proc is not None
            self.agent._signal(container.proc, signal.SIGTERM)
        self._await_processes(running, grace)
        for container in running:
            if container.proc is not None and container.proc.returncode is None:
                self.log.info("container %s: grace period over, SIGKILL", container.name)
                self.agent._signal(container.proc, signal.SIGKILL)
        self._await_processes(running, 10.0)
        for container in running:
            if container.proc is None:
                continue
            if container.proc.returncode is None:
                self.log.error("container %s survived SIGKILL", container.name)
                continue
            self._collect(container, container.proc.returncode)

    def _await_processes(self, containers: Sequence[_Container], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            c.proc is not None and c.proc.returncode is None for c in containers
        ):
            if self.agent.killed:
                raise _AgentKilled
            time.sleep(0.05)

    def _delete(self, pod: JsonDict) -> None:
        """Graceful deletion: stop the processes, report, then remove the object."""
        grace = self._grace(pod)
        self.log.info("is being deleted (grace period %gs)", grace)
        self._terminate(grace)
        try:
            self._report(pod)
        except _AgentKilled:
            raise
        except Exception as error:
            self.log.warning("could not report the final status: %s", error)
        self.agent._delete_pod(self.namespace, self.name, self.uid)

    def _shutdown(self, pod: JsonDict) -> None:
        if self._finished():
            return
        self._terminate(min(self._grace(pod), self.agent.stop_grace_seconds))
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
            now=_utcnow(),
            host_ip=NODE_IP,
            pod_ip=NODE_IP,
            failure=self.failure,
            previous=self.reported if self.reported is not None else pod.get("status"),
        )
        if status == self.reported:
            return
        try:
            self.agent._patch_pod_status(self.namespace, self.name, self.uid, status)
        except KubeApiError as error:
            if error.status == 404:
                self._removed = True
                return
            raise
        before = (self.reported or pod.get("status") or {}).get("phase")
        if before != status["phase"]:
            self.log.info("phase %s -> %s", before, status["phase"])
        self.reported = status

    def _identity(self, pod: JsonDict) -> Path:
        """The pod's kubeconfig (ServiceAccount token), written once."""
        if self.kubeconfig is not None:
            return self.kubeconfig
        if time.monotonic() < self.identity_not_before:
            raise _NotReady("waiting for the ServiceAccount token")
        try:
            token, sa_ca = self.agent._service_account_token(pod)
        except _NotReady:
            self.identity_not_before = time.monotonic() + 1.0
            raise
        agent = self.agent
        ca_data = agent.kube.ca_data or sa_ca
        document = build_kubeconfig(
            server=agent.kube.server,
            namespace=self.namespace,
            token=token,
            ca_data=ca_data,
            insecure=agent.kube.insecure,
        )
        (self.dir / "fs").mkdir(parents=True, exist_ok=True)
        account_dir = self.dir / "serviceaccount"
        account_dir.mkdir(parents=True, exist_ok=True)
        (account_dir / "namespace").write_text(self.namespace)
        if token:
            (account_dir / "token").write_text(token)
        if ca_data:
            (account_dir / "ca.crt").write_bytes(ca_data)
        path = self.dir / "kubeconfig"
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        self.kubeconfig = path
        return path


# --------------------------------------------------------------------------------------------
# The agent


class NodeAgent(Service):
    """One node of the test cluster; see the module docstring.

    ``image_map`` maps an image repository (``collectionflow-operator``, or a fuller
    ``ghcr.io/acme/collectionflow-operator``) to the image's entrypoint: None runs the
    container's ``command`` as is (resolved on PATH, which starts with the directory of
    ``sys.executable`` so the venv's console scripts are found); a sequence is put in front
    of ``command`` and is the command when the container has none.

    ``local_images`` are images built on this machine (``make image``): a container whose
    image names one of them (same tag) runs from the image's own filesystem, entrypoint, user
    and environment, with in-cluster ServiceAccount credentials (:mod:`harness.image_enter`).

    ``start()`` registers the node and returns once the pods already bound to it are picked
    up; ``stop()`` terminates the pods gracefully (they end Failed, reason ``Shutdown``) and
    marks the node NotReady; ``kill()`` simulates a lost node: no further API writes, every
    process SIGKILLed. An agent starts once; start a new one (same node name and workdir) to
    restart.
    """

    def __init__(
        self,
        kubeconfig: Path,
        node_name: str,
        image_map: Mapping[str, Sequence[str] | None],
        workdir: Path,
        *,
        local_images: Sequence[LocalImage] = (),
        heartbeat_seconds: float = 5.0,
        resync_seconds: float = 20.0,
        watch_timeout_seconds: int = 30,
        restart_backoff_seconds: float = 1.0,
        restart_backoff_max_seconds: float = 10.0,
        image_pull_backoff_seconds: float = 2.0,
        stop_grace_seconds: float = 5.0,
        request_timeout_seconds: float = 15.0,
        extra_env: Mapping[str, str] | None = None,
        node_labels: Mapping[str, str] | None = None,
        capacity: Mapping[str, str] | None = None,
        schedule: bool = True,
    ) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.node_name = node_name
        self.image_map: dict[str, tuple[str, ...] | None] = {
            key: None if value is None else tuple(value) for key, value in image_map.items()
        }
        self.local_images = tuple(local_images)
        self.workdir = Path(workdir)
        self.pods_dir = self.workdir / "pods"
        self.heartbeat_seconds = heartbeat_seconds
        self.resync_seconds = resync_seconds
        self.watch_timeout_seconds = watch_timeout_seconds
        self.restart_backoff_seconds = restart_backoff_seconds
        self.restart_backoff_max_seconds = restart_backoff_max_seconds
        self.image_pull_backoff_seconds = image_pull_backoff_seconds
        self.stop_grace_seconds = stop_grace_seconds
        self.request_timeout_seconds = request_timeout_seconds
        self.schedule = schedule
        self.capacity = dict(capacity or DEFAULT_CAPACITY)
        self.labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": _go_arch(),
            **(node_labels or {}),
        }
        self.base_env = _base_env(extra_env or {})
        self.service_env: dict[str, str] = {}
        self.killed = False
        self.stopping = False
        self._kube: _Kube | None = None
        self._state = "new"
        self._lock = threading.Lock()
        self._writes = _WriteGate()
        self._proc_lock = threading.Lock()
        self._halt = threading.Event()
        self._synced = threading.Event()
        self._workers: dict[str, _PodWorker] = {}
        self._finished: set[str] = set()
        self._recent: dict[tuple[str, str], float] = {}
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._threads: list[threading.Thread] = []
        self._death_read = -1
        self._death_write = -1
        self._ready_since = _utcnow()
        self._node_uid = ""
        self._version = "v0.0.0-nodeagent"

    # -- public API

    @property
    def kube(self) -> _Kube:
        if self._kube is None:
            raise RuntimeError("the node agent has not been started")
        return self._kube

    def start(self, timeout: float = 60.0) -> None:
        """Register the node, start watching, return when existing pods are picked up."""
        if self._state != "new":
            raise RuntimeError("a NodeAgent starts once; create a new one to restart the node")
        self._state = "running"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self._kube = _Kube(self.kubeconfig, self.request_timeout_seconds)
        self.service_env = service_env(self._kube.server)
        self._death_read, self._death_write = os.pipe()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._register_node()
                break
            except Exception as error:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"node {self.node_name}: registration failed") from error
                logger.warning("node %s: registration failed (%s); retrying", self.node_name, error)
                time.sleep(1.0)
        for target, name in ((self._watch_loop, "watch"), (self._heartbeat_loop, "heartbeat")):
            thread = threading.Thread(
                target=target, name=f"nodeagent-{self.node_name}-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        if not self._synced.wait(max(1.0, deadline - time.monotonic())):
            logger.warning("node %s: the first pod list did not complete in time", self.node_name)
        logger.info("node %s: ready (apiserver %s)", self.node_name, self._kube.server)

    def stop(self) -> None:
        """Graceful stop: terminate the pods' processes, report them, mark the node NotReady."""
        if self._state != "running":
            return
        self._state = "stopped"
        logger.info("node %s: stopping", self.node_name)
        self.stopping = True
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake()
        deadline = time.monotonic() + self.stop_grace_seconds + 30.0
        for worker in workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        self._halt.set()
        self.kube.interrupt_watches()
        for thread in self._threads:
            thread.join(5.0)
        try:
            self._post_node_status(ready=False)
        except Exception as error:
            logger.warning("node %s: could not mark the node NotReady: %s", self.node_name, error)
        self._close()
        logger.info("node %s: stopped", self.node_name)

    def kill(self) -> None:
        """Abrupt loss of the node: stop reporting now and SIGKILL every process group."""
        if self._state == "killed":
            return
        self._state = "killed"
        logger.warning("node %s: killed", self.node_name)
        self.killed = True
        self._writes.close(self.request_timeout_seconds + 5.0)  # lets writes in flight end
        self._halt.set()
        with self._proc_lock:  # only unreaped shims are registered: their group ids are ours
            for process in self._procs:
                _signal_group(process.pid, signal.SIGKILL)
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake()
        self._close()

    def container(self, spec: JsonDict) -> _Container:
        """A container of a pod, run from a local image's filesystem when its image is one of
        ``local_images`` (repository and tag), else from the venv when ``image_map`` has it."""
        image = str(spec.get("image", ""))
        local = find_local_image(image, self.local_images)
        return _Container(spec, None if local else match_image(image, self.image_map), local)

    def known_images(self) -> list[str]:
        return [image.reference for image in self.local_images] + sorted(self.image_map)

    def container_log(
        self, namespace: str, pod: str, container: str, previous: bool = False
    ) -> str:
        """The log of a container's latest run (or the run before, ``previous=True``)."""
        pod_dirs = sorted(
            self.pods_dir.glob(f"{namespace}_{pod}_*"), key=lambda path: path.stat().st_mtime
        )
        if not pod_dirs:
            raise FileNotFoundError(f"no pod {namespace}/{pod} ran on node {self.node_name}")
        runs = sorted(
            (pod_dirs[-1] / "containers" / container).glob("*.log"), key=lambda p: int(p.stem)
        )
        index = -2 if previous else -1
        if len(runs) < -index:
            raise FileNotFoundError(f"no {'previous ' if previous else ''}run of {container}")
        return runs[index].read_text(errors="replace")

    # -- processes

    def _spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        with self._proc_lock:
            if self.killed:
                raise _AgentKilled
            cwd.mkdir(parents=True, exist_ok=True)
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _SHIM, str(self._death_read), *argv],
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=(self._death_read,),
                )
            self._procs.add(process)
            return process

    def _signal(self, process: subprocess.Popen[bytes], signum: int) -> None:
        """Signal a container's process group, unless its shim is already being reaped."""
        with self._proc_lock:
            if process in self._procs:
                _signal_group(process.pid, signum)

    def _forget(self, process: subprocess.Popen[bytes]) -> None:
        with self._proc_lock:
            self._procs.discard(process)

    def _close(self) -> None:
        for fd in (self._death_write, self._death_read):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._death_read = self._death_write = -1
        if self._kube is not None:
            self._kube.close()

    # -- API writes (silenced by kill())

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        with self._writes.open():
            yield

    def _patch_pod_status(self, namespace: str, name: str, uid: str, status: JsonDict) -> None:
        with self._writing():
            self.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                body={"metadata": {"uid": uid}, "status": status},
                content_type=MERGE_PATCH,
            )

    def _delete_pod(self, namespace: str, name: str, uid: str) -> None:
        """Finalise a deletion, as the kubelet does once the processes are gone."""
        with self._writing():
            try:
                self.kube.request(
                    "DELETE",
                    f"/api/v1/namespaces/{namespace}/pods/{name}",
                    body={
                        "apiVersion": "v1",
                        "kind": "DeleteOptions",
                        "gracePeriodSeconds": 0,
                        "preconditions": {"uid": uid},
                    },
                )
            except KubeApiError as error:
                if error.status not in (404, 409):
                    raise
                return
        logger.info("pod %s/%s: deleted", namespace, name)

    def _bind(self, pod: JsonDict) -> None:
        metadata = pod["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        with self._writing():
            try:
                self.kube.request(
                    "POST",
                    f"/api/v1/namespaces/{namespace}/pods/{name}/binding",
                    body={
                        "apiVersion": "v1",
                        "kind": "Binding",
                        "metadata": {"name": name, "namespace": namespace, "uid": metadata["uid"]},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
                    },
                )
            except KubeApiError as error:
                if error.status in (404, 409):
                    return
                raise
        logger.info("pod %s/%s: bound to node %s", namespace, name, self.node_name)

    def _mark_unschedulable(self, pod: JsonDict, message: str) -> None:
        metadata = pod["metadata"]
        logger.warning(
            "pod %s/%s: unschedulable: %s", metadata["namespace"], metadata["name"], message
        )
        with self._writing():
            self.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/status",
                body={
                    "metadata": {"uid": metadata["uid"]},
                    "status": {
                        "conditions": [
                            {
                                "type": "PodScheduled",
                                "status": "False",
                                "reason": "Unschedulable",
                                "message": message,
                                "lastProbeTime": None,
                                "lastTransitionTime": timestamp(_utcnow()),
                            }
                        ]
                    },
                },
                content_type=MERGE_PATCH,
            )

    # -- node

    def _node_status(self, ready: bool) -> JsonDict:
        now = timestamp(_utcnow())
        since = timestamp(self._ready_since)

        def condition(kind: str, status: str, reason: str, message: str) -> JsonDict:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": since,
            }

        return {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                condition(
                    "Ready",
                    "True" if ready else "False",
                    "KubeletReady" if ready else "NodeAgentStopped",
                    "local node agent is posting ready status"
                    if ready
                    else "local node agent stopped",
                ),
            ],
            "addresses": [
                {"type": "InternalIP", "address": NODE_IP},
                {"type": "Hostname", "address": self.node_name},
            ],
            "nodeInfo": {
                "machineID": self.node_name,
                "systemUUID": self.node_name,
                "bootID": self.node_name,
                "kernelVersion": platform.release(),
                "osImage": "local node agent (processes)",
                "containerRuntimeVersion": "nodeagent://1",
                "kubeletVersion": self._version,
                "kubeProxyVersion": self._version,
                "operatingSystem": "linux",
                "architecture": _go_arch(),
            },
        }

    def _register_node(self) -> None:
        kube = self.kube
        with contextlib.suppress(Exception):
            self._version = str(kube.request("GET", "/version").get("gitVersion") or self._version)
        self._ready_since = _utcnow()
        with self._writing():
            try:
                node = kube.request(
                    "POST",
                    "/api/v1/nodes",
                    body={
                        "apiVersion": "v1",
                        "kind": "Node",
                        "metadata": {"name": self.node_name, "labels": self.labels},
                    },
                )
                logger.info("node %s: registered", self.node_name)
            except KubeApiError as error:
                if error.status != 409:
                    raise
                node = kube.request(
                    "PATCH",
                    f"/api/v1/nodes/{self.node_name}",
                    body={"metadata": {"labels": self.labels}},
                    content_type=MERGE_PATCH,
                )
                logger.info("node %s: registered again", self.node_name)
        self._node_uid = str(node["metadata"]["uid"])
        self._post_node_status(ready=True)
        self._renew_lease()

    def _post_node_status(self, ready: bool) -> None:
        with self._writing():
            self.kube.request(
                "PATCH",
                f"/api/v1/nodes/{self.node_name}/status",
                body={"status": self._node_status(ready)},
                content_type=MERGE_PATCH,
            )

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{NODE_LEASE_NAMESPACE}/leases"
        spec = {
            "holderIdentity": self.node_name,
            "leaseDurationSeconds": 40,
            "renewTime": _micro_timestamp(_utcnow()),
        }
        with self._writing():
            try:
                self.kube.request(
                    "PATCH",
                    f"{path}/{self.node_name}",
                    body={"spec": spec},
                    content_type=MERGE_PATCH,
                )
            except KubeApiError as error:
                if error.status != 404:
                    raise
                self.kube.request(
                    "POST",
                    path,
                    body={
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {
                            "name": self.node_name,
                            "namespace": NODE_LEASE_NAMESPACE,
                            "ownerReferences": [
                                {
                                    "apiVersion": "v1",
                                    "kind": "Node",
                                    "name": self.node_name,
                                    "uid": self._node_uid,
                                }
                            ],
                        },
                        "spec": spec,
                    },
                )

    def _heartbeat_loop(self) -> None:
        while not self._halt.wait(self.heartbeat_seconds):
            try:
                self._post_node_status(ready=True)
                self._renew_lease()
            except _AgentKilled:
                return
            except Exception as error:
                logger.warning("node %s: heartbeat failed: %s", self.node_name, error)

    # -- pods: list, watch, dispatch

    def _watch_loop(self) -> None:
        resource_version: str | None = None
        next_relist = 0.0
        while not self._halt.is_set():
            try:
                if resource_version is None or time.monotonic() >= next_relist:
                    resource_version = self._relist()
                    next_relist = time.monotonic() + self.resync_seconds
                    self._synced.set()
                timeout = int(min(self.watch_timeout_seconds, next_relist - time.monotonic()))
                for event in self.kube.watch(
                    "/api/v1/pods", {"resourceVersion": resource_version}, max(1, timeout)
                ):
                    if self._halt.is_set():
                        return
                    kind = event.get("type")
                    pod = event.get("object") or {}
                    if kind == "ERROR":  # e.g. 410 Gone: the version is too old
                        logger.info("node %s: watch error %s; relisting", self.node_name, pod)
                        resource_version = None
                        break
                    resource_version = (pod.get("metadata") or {}).get(
                        "resourceVersion", resource_version
                    )
                    if kind == "DELETED":
                        self._on_deleted(pod)
                    elif kind in ("ADDED", "MODIFIED"):
                        self._on_pod(pod)
            except _AgentKilled:
                return
            except Exception as error:
                if self._halt.is_set():
                    return
                logger.warning("node %s: pod watch failed (%s); relisting", self.node_name, error)
                resource_version = None
                self._halt.wait(1.0)

    def _relist(self) -> str:
        listing = self.kube.request("GET", "/api/v1/pods")
        seen: set[str] = set()
        for pod in listing.get("items") or []:
            seen.add(str(pod["metadata"]["uid"]))
            self._on_pod(pod)
        with self._lock:
            gone = [w for uid, w in self._workers.items() if uid not in seen]
            self._finished &= seen
            now = time.monotonic()
            self._recent = {k: t for k, t in self._recent.items() if now - t < 60}
        for worker in gone:
            worker.removed()
        return str(listing["metadata"]["resourceVersion"])

    def _on_deleted(self, pod: JsonDict) -> None:
        uid = str(pod["metadata"]["uid"])
        with self._lock:
            worker = self._workers.get(uid)
            self._finished.discard(uid)
        if worker is not None:
            worker.removed()

    def _once(self, action: str, uid: str, seconds: float = 2.0) -> bool:
        """True at most once per ``seconds`` for an action on a pod (debounces repeats)."""
        now = time.monotonic()
        with self._lock:
            if now - self._recent.get((action, uid), -1e9) < seconds:
                return False
            self._recent[(action, uid)] = now
            return True

    def _on_pod(self, pod: JsonDict) -> None:
        if self.killed:
            return
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        uid = str(metadata.get("uid", ""))
        node = spec.get("nodeName")
        if not node:
            if self.schedule and not self.stopping:
                self._schedule(pod)
            return
        if node != self.node_name:
            return
        with self._lock:
            worker = self._workers.get(uid)
            finished = uid in self._finished
        if worker is not None:
            worker.update(pod)
            return
        if self.stopping:
            return
        phase = (pod.get("status") or {}).get("phase")
        if finished or phase in TERMINAL_PHASES:
            if metadata.get("deletionTimestamp") and self._once("delete", uid):
                self._delete_pod(str(metadata["namespace"]), str(metadata["name"]), uid)
            return
        worker = _PodWorker(self, pod)
        with self._lock:
            if self.killed or uid in self._workers:
                return
            self._workers[uid] = worker
        worker.thread.start()

    def _schedule(self, pod: JsonDict) -> None:
        metadata = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        if (spec.get("schedulerName") or DEFAULT_SCHEDULER) != DEFAULT_SCHEDULER:
            return
        if metadata.get("deletionTimestamp"):
            return
        if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
            return
        uid = str(metadata.get("uid", ""))
        selector = spec.get("nodeSelector") or {}
        if any(self.labels.get(key) != value for key, value in selector.items()):
            if self._once("unschedulable", uid, 60.0):
                self._mark_unschedulable(
                    pod, "0/1 nodes are available: 1 node(s) didn't match node selector."
                )
            return
        if self._once("bind", uid):
            self._bind(pod)

    def _worker_done(self, worker: _PodWorker) -> None:
        with self._lock:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]
            self._finished.add(worker.uid)

    # -- ServiceAccount identity

    def _service_account_token(self, pod: JsonDict) -> tuple[str | None, bytes | None]:
        """The token (and ca.crt) a kubelet would mount for the pod's ServiceAccount.

        The ``<sa>-token-xxxxx`` secret volume the ServiceAccount admission plugin added (1.20),
        else a projected token volume (TokenRequest, 1.21+), else the ServiceAccount's token
        secret; raises _NotReady until the token controller has created it.
        """
        kube = self.kube
        metadata = pod["metadata"]
        namespace = str(metadata["namespace"])
        account = service_account_name(pod)
        spec = pod.get("spec") or {}
        volumes = spec.get("volumes") or []
        for volume in volumes:
            secret_name = str((volume.get("secret") or {}).get("secretName") or "")
            if secret_name.startswith(f"{account}-token-"):
                return self._token_secret(namespace, secret_name)
        for volume in volumes:
            for source in (volume.get("projected") or {}).get("sources") or []:
                if source.get("serviceAccountToken"):
                    return self._request_token(pod, account), None
        if spec.get("automountServiceAccountToken") is False:
            return None, None
        service_account = kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}")
        if service_account is None:
            raise _NotReady(f'serviceaccount "{account}" not found')
        if service_account.get("automountServiceAccountToken") is False:
            return None, None
        for reference in service_account.get("secrets") or []:
            with contextlib.suppress(_NotReady):
                return self._token_secret(namespace, str(reference.get("name")))
        return self._request_token(pod, account), None

    def _token_secret(self, namespace: str, name: str) -> tuple[str, bytes | None]:
        secret = self.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            raise _NotReady(f'secret "{name}" not found')
        data = secret.get("data") or {}
        if secret.get("type") != "kubernetes.io/service-account-token" or not data.get("token"):
            raise _NotReady(f'secret "{name}" holds no ServiceAccount token yet')
        ca = data.get("ca.crt")
        return base64.b64decode(data["token"]).decode(), base64.b64decode(ca) if ca else None

    def _request_token(self, pod: JsonDict, account: str) -> str:
        metadata = pod["metadata"]
        try:
            with self._writing():
                answer = self.kube.request(
                    "POST",
                    f"/api/v1/namespaces/{metadata['namespace']}/serviceaccounts/{account}/token",
                    body={
                        "apiVersion": "authentication.k8s.io/v1",
                        "kind": "TokenRequest",
                        "spec": {
                            "expirationSeconds": 86400,
                            "boundObjectRef": {
                                "apiVersion": "v1",
                                "kind": "Pod",
                                "name": metadata["name"],
                                "uid": metadata["uid"],
                            },
                        },
                    },
                )
        except KubeApiError as error:
            raise _NotReady(f'no token for serviceaccount "{account}": {error}') from error
        return str(answer["status"]["token"])


def _go_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """What every process gets before the container's own variables: the image's environment."""
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith(INHERITED_ENV_PREFIXES)})
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH") or os.defpath])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.nodeagent",
        description="Run the local node agent until SIGTERM/SIGINT (graceful stop).",
    )
    parser.add_argument("--kubeconfig", type=Path, required=True, help="admin kubeconfig")
    parser.add_argument("--node-name", required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="pod directories and logs")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME[=ENTRYPOINT]",
        help="an image repository the agent runs, optionally with its entrypoint (repeatable)",
    )
    parser.add_argument(
        "--local-image",
        action="append",
        default=[],
        metavar="REFERENCE",
        help="a locally built image (buildah) whose pods run from its filesystem (repeatable)",
    )
    parser.add_argument("--heartbeat-seconds", type=float, default=5.0)
    parser.add_argument(
        "--no-schedule",
        action="store_true",
        help="do not bind pending pods (another scheduler or agent does)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        image_map = dict(parse_image_option(value) for value in args.image)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    agent = NodeAgent(
        kubeconfig=args.kubeconfig,
        node_name=args.node_name,
        image_map=image_map,
        workdir=args.workdir,
        local_images=[prepare_image(reference) for reference in args.local_image],
        heartbeat_seconds=args.heartbeat_seconds,
        schedule=not args.no_schedule,
    )
    agent.start()
    print(f"nodeagent: node {args.node_name} is ready", flush=True)
    while not stop.wait(1.0):
        pass
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
