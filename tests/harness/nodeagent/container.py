"""One container of a pod: its runtime state, and the command line that starts it.

A container runs either from the test venv (a host process with the pod's identity as its
``KUBECONFIG``) or from a locally built image's filesystem, entered by
:mod:`harness.images.enter` as a runtime would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from harness.images.model import (
    LocalImage,
    image_argv,
    image_env,
    read_only_root,
    run_as,
    volume_mounts,
    working_dir,
)
from harness.images.store import find_executable
from harness.nodeagent.model import (
    ImageMatch,
    JsonDict,
    container_argv,
    exec_too_long,
    termination_message,
)
from harness.nodeagent.processes import tail, which
from harness.nodeagent.status import ContainerStatus, Running, Terminated, Waiting, parse_timestamp

IMAGE_ENTER: Final = Path(__file__).parent.parent / "images" / "enter.py"
RESTARTED_REASON: Final = "NodeAgentRestarted"
RESTARTED_MESSAGE: Final = (
    "The local node agent was restarted; the container's process did not survive it."
)


@dataclass(frozen=True)
class PodConfig:
    """What every pod of the node shares: back-offs, grace, and the environment base."""

    restart_backoff_seconds: float
    restart_backoff_max_seconds: float
    image_pull_backoff_seconds: float
    stop_grace_seconds: float
    base_env: Mapping[str, str]
    service_env: Mapping[str, str]
    known_images: tuple[str, ...]


class StartError(Exception):
    """The container's process could not be started (kubelet: StartError, exit code 128)."""


class Container:
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

    def restore(self, reported: JsonDict, now: dt.datetime) -> bool:
        """Take over the status an earlier agent reported; True when the container was
        running then (its process died with that agent: exit code 137)."""
        self.restart_count = int(reported.get("restartCount") or 0)
        self.container_id = reported.get("containerID")
        self.last_state = terminated_from_json(
            (reported.get("lastState") or {}).get("terminated"), now
        )
        state = reported.get("state") or {}
        if state.get("running") is not None:
            self.has_run = True
            self.state = Terminated(
                exit_code=137,
                reason=RESTARTED_REASON,
                finished_at=now,
                started_at=parse_timestamp(state["running"].get("startedAt")),
                message=RESTARTED_MESSAGE,
                container_id=self.container_id,
            )
            return True
        if state.get("terminated"):
            self.has_run = True
            self.state = terminated_from_json(state["terminated"], now) or self.state
        elif self.last_state is not None:
            self.has_run = True
        return False

    def pull_problem(
        self, now: float, known: Sequence[str], backoff: float
    ) -> tuple[str, str] | None:
        """An image the agent cannot run: ErrImagePull at first, ImagePullBackOff after
        `backoff` seconds, each with the kubelet's kind of message; None while it stays so."""
        detail = (
            f'image "{self.image}" is not available to the local node agent '
            f"(it runs only: {', '.join(known) or 'none'})"
        )
        if self.pull_failed_at is None:
            self.pull_failed_at = now
            return "ErrImagePull", detail
        if now - self.pull_failed_at >= backoff:
            return "ImagePullBackOff", f'Back-off pulling image "{self.image}": {detail}'
        return None

    def problem(self, reason: str, message: str) -> bool:
        """Keep the container waiting with this reason; True when the problem is new."""
        self.state = Waiting(reason, message)
        if self.reported_problem == f"{reason}: {message}":
            return False
        self.reported_problem = f"{reason}: {message}"
        return True

    def start_failed(self, message: str, now: dt.datetime) -> None:
        if self.has_run:
            self.restart_count += 1
        self.has_run = True
        self.state = Terminated(
            exit_code=128, reason="StartError", finished_at=now, started_at=now, message=message
        )

    def collect(self, code: int, now: dt.datetime) -> int:
        """Record the exit of the container's process; returns its exit code."""
        self.proc = None
        exit_code = code if code >= 0 else 128 - code
        started_at = self.state.started_at if isinstance(self.state, Running) else None
        message = termination_message(
            tail(self.termination_file, 4096),
            tail(self.log_path, 16384),
            self.spec.get("terminationMessagePolicy"),
            exit_code,
        )
        self.state = Terminated(
            exit_code=exit_code,
            reason="Completed" if exit_code == 0 else "Error",
            finished_at=now,
            started_at=started_at,
            message=message,
            container_id=self.container_id,
        )
        return exit_code

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


def terminated_from_json(value: object, now: dt.datetime) -> Terminated | None:
    if not isinstance(value, dict):
        return None
    return Terminated(
        exit_code=int(value.get("exitCode", 0)),
        reason=str(value.get("reason") or ""),
        finished_at=parse_timestamp(value.get("finishedAt")) or now,
        started_at=parse_timestamp(value.get("startedAt")),
        message=value.get("message"),
        container_id=value.get("containerID"),
    )


def venv_launch(
    container: Container,
    defined: Mapping[str, str],
    kubeconfig: Path,
    termination: Path,
    pod_name: str,
    pod_dir: Path,
    config: PodConfig,
) -> tuple[list[str], dict[str, str], Path]:
    """A host process from the test venv, with the pod's identity as its ``KUBECONFIG``."""
    env = {
        **config.base_env,
        **config.service_env,
        "HOSTNAME": pod_name,
        **defined,
        "KUBECONFIG": str(kubeconfig),
        "TERMINATION_MESSAGE_PATH": str(termination),
    }
    cwd = pod_dir / "fs"
    assert container.match is not None
    argv = container_argv(
        container.spec, container.match.entrypoint, {**config.service_env, **defined}
    )
    if which(argv[0], env.get("PATH", ""), cwd) is None:
        raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
    refused = exec_too_long(argv, env)
    if refused:
        raise StartError(refused)
    return argv, env, cwd


def image_launch(
    container: Container,
    pod: JsonDict,
    defined: Mapping[str, str],
    termination: Path,
    pod_dir: Path,
    volume_dirs: Mapping[str, Path],
    config: PodConfig,
) -> tuple[list[str], dict[str, str], Path]:
    """The image's filesystem, entered by :mod:`harness.images.enter` as a runtime would."""
    image = container.local
    assert image is not None
    service_env = config.service_env
    env = image_env(image.config, service_env, str(pod["metadata"]["name"]), defined)
    passwd = image.rootfs / "etc" / "passwd"
    uid, gid = run_as(
        pod, container.spec, image.config, passwd.read_text() if passwd.exists() else ""
    )
    argv = image_argv(container.spec, image.config, {**service_env, **defined})
    if find_executable(image.rootfs, argv[0], env.get("PATH", "")) is None:
        raise StartError(f'exec: "{argv[0]}": executable file not found in $PATH')
    refused = exec_too_long(argv, env)
    if refused:
        raise StartError(refused)
    layer = termination.parent / "rootfs"
    for part in ("upper", "work", "root"):
        (layer / part).mkdir(parents=True, exist_ok=True)
    mounts = volume_mounts(container.spec, volume_dirs, termination)
    spec = {
        "lower": str(image.rootfs),
        "upper": str(layer / "upper"),
        "work": str(layer / "work"),
        "root": str(layer / "root"),
        "readonly": read_only_root(container.spec),
        "mounts": [mount.as_json() for mount in mounts],
        "uid": uid,
        "gid": gid,
        "cwd": working_dir(container.spec, image.config),
        "argv": argv,
        "env": env,
    }
    launch = termination.parent / "launch.json"  # a file: the environment is no argument
    launch.write_text(json.dumps(spec))
    command = [sys.executable, "-I", "-S", str(IMAGE_ENTER), str(launch)]
    return command, {"PATH": os.defpath}, pod_dir


def launch(
    container: Container,
    pod: JsonDict,
    defined: Mapping[str, str],
    kubeconfig: Path,
    termination: Path,
    pod_dir: Path,
    volume_dirs: Mapping[str, Path] | None,
    config: PodConfig,
) -> tuple[list[str], dict[str, str], Path]:
    """How to start the container: from its image (`image_launch`), or from the test venv."""
    if container.local is not None:
        assert volume_dirs is not None
        return image_launch(container, pod, defined, termination, pod_dir, volume_dirs, config)
    name = str(pod["metadata"]["name"])
    return venv_launch(container, defined, kubeconfig, termination, name, pod_dir, config)


def shown_command(container: Container, argv: Sequence[str]) -> str:
    """The container's own command line, for the log (an image's is in its launch file)."""
    if container.local is not None:
        return shlex.join(json.loads(Path(argv[-1]).read_text())["argv"])
    return shlex.join(argv)
