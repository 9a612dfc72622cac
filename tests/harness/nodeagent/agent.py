"""The agent loop: one node of the test cluster, its pod watch, and the pods it runs.

See :mod:`harness.nodeagent` for what the agent is. This module wires the rooms together:
the API (:mod:`.kube`), the Node (:mod:`.node`), the process table (:mod:`.processes`) and a
:class:`~harness.nodeagent.pod.PodWorker` per pod bound to this node.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from harness.images.model import LocalImage
from harness.images.store import BuiltImages
from harness.lifecycle import Service
from harness.nodeagent.bodies import binding, unschedulable_status
from harness.nodeagent.container import Container, PodConfig
from harness.nodeagent.kube import AgentKilled, KubeClient, NodeApi
from harness.nodeagent.logs import LogServer
from harness.nodeagent.model import JsonDict, match_image, service_env
from harness.nodeagent.node import NodeRegistration, go_arch
from harness.nodeagent.pod import PodWorker
from harness.nodeagent.processes import ProcessTable, base_env
from harness.nodeagent.status import DEFAULT_SCHEDULER, TERMINAL_PHASES

logger = logging.getLogger("harness.nodeagent")

DEFAULT_CAPACITY: Final[Mapping[str, str]] = {"cpu": "8", "memory": "32Gi", "pods": "500"}


class NodeAgent(Service):
    """One node of the test cluster; see the module docstring.

    ``image_map`` maps an image repository (``collectionflow-operator``, or a fuller
    ``ghcr.io/acme/collectionflow-operator``) to the image's entrypoint: None runs the
    container's ``command`` as is (resolved on PATH, which starts with the directory of
    ``sys.executable`` so the venv's console scripts are found); a sequence is put in front
    of ``command`` and is the command when the container has none.

    ``local_images`` are images built on this machine (``make image``): a container whose
    image names one of them (same tag) runs from the image's own filesystem, entrypoint, user
    and environment, with in-cluster ServiceAccount credentials (:mod:`harness.images.enter`).

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
        self.local_images = BuiltImages(local_images)
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
            "kubernetes.io/arch": go_arch(),
            **(node_labels or {}),
        }
        self.base_env = base_env(extra_env or {})
        self.killed = False
        self.stopping = False
        self._api: NodeApi | None = None
        self._node: NodeRegistration | None = None
        self._logs: LogServer | None = None
        self._config: PodConfig | None = None
        self.processes = ProcessTable()
        self._state = "new"
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._synced = threading.Event()
        self._workers: dict[str, PodWorker] = {}
        self._finished: set[str] = set()
        self._recent: dict[tuple[str, str], float] = {}
        self._threads: list[threading.Thread] = []

    # -- public API

    @property
    def api(self) -> NodeApi:
        if self._api is None:
            raise RuntimeError("the node agent has not been started")
        return self._api

    @property
    def kube(self) -> KubeClient:
        return self.api.kube

    @property
    def config(self) -> PodConfig:
        if self._config is None:
            raise RuntimeError("the node agent has not been started")
        return self._config

    def start(self, timeout: float = 60.0) -> None:
        """Register the node, start watching, return when existing pods are picked up."""
        if self._state != "new":
            raise RuntimeError("a NodeAgent starts once; create a new one to restart the node")
        self._state = "running"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        kube = KubeClient(self.kubeconfig, self.request_timeout_seconds)
        self._api = NodeApi(kube, self.node_name)
        self._logs = LogServer(self.workdir, self.container_log)
        self._logs.start()
        self._node = NodeRegistration(
            self._api, self.labels, self.capacity, self.heartbeat_seconds, self._logs.port
        )
        self._config = PodConfig(
            restart_backoff_seconds=self.restart_backoff_seconds,
            restart_backoff_max_seconds=self.restart_backoff_max_seconds,
            image_pull_backoff_seconds=self.image_pull_backoff_seconds,
            stop_grace_seconds=self.stop_grace_seconds,
            base_env=self.base_env,
            service_env=service_env(kube.server),
            known_images=tuple(self.known_images()),
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._node.register()
                break
            except Exception as error:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"node {self.node_name}: registration failed") from error
                logger.warning("node %s: registration failed (%s); retrying", self.node_name, error)
                time.sleep(1.0)
        loops = (
            (self._watch_loop, (), "watch"),
            (self._node.heartbeat_loop, (self._halt,), "heartbeat"),
        )
        for target, args, name in loops:
            thread = threading.Thread(
                target=target, args=args, name=f"nodeagent-{self.node_name}-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        if not self._synced.wait(max(1.0, deadline - time.monotonic())):
            logger.warning("node %s: the first pod list did not complete in time", self.node_name)
        logger.info("node %s: ready (apiserver %s)", self.node_name, kube.server)

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
            assert self._node is not None
            self._node.post_status(ready=False)
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
        if self._api is not None:
            self._api.silence(self.request_timeout_seconds + 5.0)  # writes in flight end
        self._halt.set()
        self.processes.kill_all()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.wake()
        self._close()

    def container(self, spec: JsonDict) -> Container:
        """A container of a pod, run from a local image's filesystem when its image is one of
        ``local_images`` or built here since (repository and tag), else from the venv when
        ``image_map`` has it."""
        image = str(spec.get("image", ""))
        local = self.local_images.find(image)
        return Container(spec, None if local else match_image(image, self.image_map), local)

    def known_images(self) -> list[str]:
        return self.local_images.references + sorted(self.image_map)

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

    def _close(self) -> None:
        self.processes.close()
        if self._logs is not None:
            self._logs.stop()
        if self._api is not None:
            self._api.kube.close()

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
            except AgentKilled:
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
                self.api.delete_pod(str(metadata["namespace"]), str(metadata["name"]), uid)
            return
        worker = PodWorker(self, pod)
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
            namespace, name = str(metadata["namespace"]), str(metadata["name"])
            self.api.bind(namespace, name, binding(namespace, name, uid, self.node_name))

    def _mark_unschedulable(self, pod: JsonDict, message: str) -> None:
        metadata = pod["metadata"]
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        logger.warning("pod %s/%s: unschedulable: %s", namespace, name, message)
        status = unschedulable_status(message, dt.datetime.now(dt.UTC))
        self.api.patch_pod_status(namespace, name, str(metadata["uid"]), status)

    def worker_done(self, worker: PodWorker) -> None:
        with self._lock:
            if self._workers.get(worker.uid) is worker:
                del self._workers[worker.uid]
            self._finished.add(worker.uid)
