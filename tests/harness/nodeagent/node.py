"""The Node object: registering it, and its heartbeat (status and Lease) while the agent runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import platform
import threading
from collections.abc import Mapping

from harness.nodeagent.bodies import node_lease, node_lease_spec, node_status
from harness.nodeagent.kube import AgentKilled, NodeApi

logger = logging.getLogger("harness.nodeagent")

NODE_IP = "127.0.0.1"


def go_arch() -> str:
    """The machine's architecture as Go (and so Kubernetes) names it."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class NodeRegistration:
    """Registers the node and keeps it Ready (status and Lease) every ``heartbeat_seconds``."""

    def __init__(
        self,
        api: NodeApi,
        labels: Mapping[str, str],
        capacity: Mapping[str, str],
        heartbeat_seconds: float,
        kubelet_port: int = 0,
    ) -> None:
        self.api = api
        self.kubelet_port = kubelet_port
        self.node_name = api.node_name
        self.labels = dict(labels)
        self.capacity = dict(capacity)
        self.heartbeat_seconds = heartbeat_seconds
        self._ready_since = dt.datetime.now(dt.UTC)
        self._node_uid = ""
        self._version = "v0.0.0-nodeagent"

    def register(self) -> None:
        """Create (or take over) the Node, mark it Ready and renew its Lease."""
        with contextlib.suppress(Exception):
            answer = self.api.kube.request("GET", "/version")
            self._version = str(answer.get("gitVersion") or self._version)
        self._ready_since = dt.datetime.now(dt.UTC)
        node = self.api.register_node(self.labels)
        self._node_uid = str(node["metadata"]["uid"])
        self.post_status(ready=True)
        self._renew_lease()

    def post_status(self, ready: bool) -> None:
        self.api.patch_node_status(
            node_status(
                ready,
                self.capacity,
                NODE_IP,
                self.node_name,
                self._version,
                go_arch(),
                platform.release(),
                dt.datetime.now(dt.UTC),
                self._ready_since,
                self.kubelet_port,
            )
        )

    def _renew_lease(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.api.renew_lease(
            node_lease_spec(self.node_name, now), node_lease(self.node_name, self._node_uid, now)
        )

    def heartbeat_loop(self, halt: threading.Event) -> None:
        """Post Ready and renew the Lease until ``halt`` is set or the agent is killed."""
        while not halt.wait(self.heartbeat_seconds):
            try:
                self.post_status(ready=True)
                self._renew_lease()
            except AgentKilled:
                return
            except Exception as error:
                logger.warning("node %s: heartbeat failed: %s", self.node_name, error)
