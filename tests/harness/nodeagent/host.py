"""What a pod worker shares with its agent: the node's pod settings, and the agent itself."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.nodeagent.container import Container, PodConfig
from harness.nodeagent.kube import NodeApi
from harness.nodeagent.model import JsonDict
from harness.nodeagent.processes import ProcessTable

if TYPE_CHECKING:
    from harness.nodeagent.pod import PodWorker


class PodHost(Protocol):
    """What a pod worker needs of its agent."""

    processes: ProcessTable
    pods_dir: Path

    @property
    def api(self) -> NodeApi: ...

    @property
    def config(self) -> PodConfig: ...

    @property
    def killed(self) -> bool: ...

    @property
    def stopping(self) -> bool: ...

    def container(self, spec: JsonDict) -> Container: ...

    def worker_done(self, worker: PodWorker) -> None: ...


class PodLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line with the pod, ``pod <namespace>/<name>: ...``."""

    def __init__(self, base: logging.Logger, pod: str) -> None:
        super().__init__(base, {"pod": pod})
        self.pod = pod

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"pod {self.pod}: {msg}", kwargs
