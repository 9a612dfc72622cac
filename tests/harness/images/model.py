"""The pure rules of running a pod's container from a locally built image.

Which image a pod's reference names, the command line (Docker's ENTRYPOINT/CMD against the
container's ``command``/``args``), the environment, the user, the working directory and the
mounts a container runtime would set up. :mod:`harness.images.enter` carries the mounts out;
:mod:`harness.images.store` finds the image's filesystem and configuration with buildah.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.nodeagent.model import ContainerConfigError, JsonDict, expand, image_lookup_keys

SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
# Mount points a runtime creates in every container; made once in the image's filesystem.
MOUNT_POINTS = ("/proc", "/dev", "/tmp", SERVICE_ACCOUNT_PATH)


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image configuration a runtime uses."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    user: str = ""

    @classmethod
    def from_oci(cls, config: Mapping[str, Any]) -> ImageConfig:
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        return cls(
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            env=env,
            working_dir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
        )


def split_reference(image: str) -> tuple[str, str]:
    """(repository, tag) of a reference; the tag is ``latest`` when none is given.

    >>> split_reference("localhost/collectionflow-operator:0.1.0")
    ('localhost/collectionflow-operator', '0.1.0')
    """
    name = image.split("@", 1)[0]
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, "latest"


@dataclass(frozen=True)
class LocalImage:
    """An image built on this machine: its reference, filesystem and configuration."""

    reference: str
    rootfs: Path
    config: ImageConfig
    image_id: str = ""

    def runs(self, image: str) -> bool:
        """Whether a pod's ``image`` names this one: same tag, and a repository that matches
        ours by full name, by name without registry host, or by last path component."""
        repository, tag = split_reference(self.reference)
        wanted_repository, wanted_tag = split_reference(image)
        if tag != wanted_tag:
            return False
        return bool(set(image_lookup_keys(repository)) & set(image_lookup_keys(wanted_repository)))


def find_local_image(image: str, images: Sequence[LocalImage]) -> LocalImage | None:
    return next((candidate for candidate in images if candidate.runs(image)), None)


def image_argv(container: JsonDict, config: ImageConfig, env: Mapping[str, str]) -> list[str]:
    """The command line: ``command`` replaces ENTRYPOINT, ``args`` replaces CMD, and CMD is
    dropped when ``command`` is given, as with Docker and every Kubernetes runtime."""
    command = [expand(part, env) for part in container.get("command") or []]
    args = [expand(part, env) for part in container.get("args") or []]
    argv = command + args if command else list(config.entrypoint) + (args or list(config.cmd))
    if not argv:
        raise ContainerConfigError("no command specified and the image has none")
    return argv


def _security_value(pod: JsonDict, container: JsonDict, key: str) -> Any:
    for context in (
        container.get("securityContext"),
        (pod.get("spec") or {}).get("securityContext"),
    ):
        if context and context.get(key) is not None:
            return context[key]
    return None


def _passwd_ids(passwd: str, user: str) -> tuple[int, int] | None:
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == user:
            return int(fields[2]), int(fields[3])
    return None


def run_as(pod: JsonDict, container: JsonDict, config: ImageConfig, passwd: str) -> tuple[int, int]:
    """(uid, gid) of the container's process: ``runAsUser``/``runAsGroup`` of the container,
    then of the pod, then the image's ``User`` (numeric, or a name from its /etc/passwd).

    ``runAsNonRoot`` refuses uid 0, with the kubelet's message.
    """
    image_uid, image_gid = 0, 0
    if config.user:
        user, _, group = config.user.partition(":")
        if user.isdigit():
            image_uid = int(user)
            image_gid = int(group) if group.isdigit() else image_uid
        else:
            ids = _passwd_ids(passwd, user)
            if ids is None:
                raise ContainerConfigError(f"unable to find user {user}: no matching entries")
            image_uid, image_gid = ids
    uid = _security_value(pod, container, "runAsUser")
    gid = _security_value(pod, container, "runAsGroup")
    resolved_uid = image_uid if uid is None else int(uid)
    resolved_gid = (image_gid if uid is None else resolved_uid) if gid is None else int(gid)
    if _security_value(pod, container, "runAsNonRoot") and resolved_uid == 0:
        raise ContainerConfigError("container has runAsNonRoot and image will run as root")
    return resolved_uid, resolved_gid


def read_only_root(container: JsonDict) -> bool:
    return bool((container.get("securityContext") or {}).get("readOnlyRootFilesystem"))


def working_dir(container: JsonDict, config: ImageConfig) -> str:
    return str(container.get("workingDir") or config.working_dir or "/")


def image_env(
    config: ImageConfig, service_env: Mapping[str, str], hostname: str, defined: Mapping[str, str]
) -> dict[str, str]:
    """The image's environment, then what Kubernetes adds, then the container's own."""
    return {**config.env, "HOSTNAME": hostname, **service_env, **defined}


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    readonly: bool
    file: bool = False

    def as_json(self) -> JsonDict:
        return {
            "source": self.source,
            "target": self.target,
            "readonly": self.readonly,
            "file": self.file,
        }


def volume_mounts(
    container: JsonDict, volume_dirs: Mapping[str, Path], termination_file: Path
) -> list[Mount]:
    """The container's volume mounts (shallowest first) and its termination-message file.

    Raises ContainerConfigError for a mount of a volume that has no directory here.
    """
    mounts: list[Mount] = []
    for item in container.get("volumeMounts") or []:
        name = str(item.get("name"))
        if name not in volume_dirs:
            raise ContainerConfigError(
                f'volume "{name}": only emptyDir and secret volumes are supported here'
            )
        if item.get("subPath"):
            raise ContainerConfigError(f'volume "{name}": subPath is not supported here')
        mounts.append(
            Mount(str(volume_dirs[name]), str(item["mountPath"]), bool(item.get("readOnly")))
        )
    mounts.sort(key=lambda mount: mount.target.rstrip("/").count("/"))
    path = str(container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH)
    mounts.append(Mount(str(termination_file), path, readonly=False, file=True))
    return mounts
