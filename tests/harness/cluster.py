"""The whole local test cluster: the control plane plus one node agent for our own image.

Pods of the built image (``make image``; the operator's default ``collectionflow-operator:
<version>``) run from the image's own filesystem. Any other tag of the repository, such as
``collectionflow-operator:venv``, runs from the test venv: faster, for tests of the node agent
and the worker that do not care about packaging.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from collectionflow.settings import OperatorSettings
from harness.controlplane import LocalControlPlane, provision_binaries
from harness.images.model import LocalImage
from harness.images.store import prepare_image
from harness.lifecycle import Service
from harness.nodeagent.agent import NodeAgent

IMAGE_REPOSITORY = "collectionflow-operator"
OPERATOR_IMAGE = OperatorSettings().image
VENV_IMAGE = f"{IMAGE_REPOSITORY}:venv"
NODE_NAME = "cf-local-node"


class LocalCluster(Service):
    """Start with `with LocalCluster(workdir) as cluster:`; everything stops on exit."""

    def __init__(self, workdir: Path | None = None) -> None:
        self._owns_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="cf-cluster-"))
        self.control_plane = LocalControlPlane(self.workdir / "control-plane", provision_binaries())
        self.node_agent: NodeAgent | None = None
        self.image: LocalImage | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    def start(self) -> None:
        self.image = prepare_image(OPERATOR_IMAGE)
        self.control_plane.start()
        try:
            self.start_node_agent()
        except BaseException:
            self.control_plane.stop()
            raise

    def start_node_agent(self) -> NodeAgent:
        self.node_agent = NodeAgent(
            kubeconfig=self.kubeconfig,
            node_name=NODE_NAME,
            image_map={VENV_IMAGE: None},
            local_images=[self.image] if self.image else [],
            workdir=self.workdir / "node",
        )
        self.node_agent.start()
        return self.node_agent

    def stop(self) -> None:
        if self.node_agent is not None:
            self.node_agent.stop()
            self.node_agent = None
        self.control_plane.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass(frozen=True)
class Cluster:
    """The cluster under test: a LocalCluster, or any cluster a KUBECONFIG names."""

    kubeconfig: Path
    local: LocalCluster | None

    def api_client(self) -> client.ApiClient:
        api_client: client.ApiClient = config.new_client_from_config(
            config_file=str(self.kubeconfig)
        )
        return api_client
