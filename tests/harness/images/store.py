"""Images built on this machine (``make image``), made ready for the node agent to run.

``make image`` builds with buildah (see scripts/build-image.sh); here each image is prepared
once: a buildah working container of it, mounted, gives its filesystem, which the node agent
puts read-only below every container of that image (see :mod:`harness.images.enter`). The
image's configuration (ENTRYPOINT, CMD, Env, WorkingDir, User) comes from ``buildah inspect``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from harness.images.enter import inside
from harness.images.model import MOUNT_POINTS, ImageConfig, LocalImage, find_local_image
from harness.nodeagent.model import JsonDict

STORAGE_DRIVER = os.environ.get("STORAGE_DRIVER", "overlay")


class ImageNotBuilt(Exception):
    """The image is not in buildah's storage; ``make image`` builds it."""


def _buildah(*args: str) -> str:
    result = subprocess.run(
        ["buildah", "--storage-driver", STORAGE_DRIVER, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ImageNotBuilt(f"buildah {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def prepare_image(reference: str) -> LocalImage:
    """The filesystem and configuration of a locally built image, ready to run.

    The working container is named after the image ID, so the same image is prepared once per
    machine and a rebuilt image gets a fresh one.
    """
    if shutil.which("buildah") is None:
        raise ImageNotBuilt("buildah is not installed; `make image` installs it and builds")
    try:
        info = json.loads(_buildah("inspect", "--type", "image", reference))
    except ImageNotBuilt as error:
        raise ImageNotBuilt(f"{reference} is not built here: `make image` builds it") from error
    image_id = str(info["FromImageID"])
    name = f"cf-nodeagent-{image_id[:12]}"
    existing = json.loads(_buildah("containers", "--json") or "null") or []
    if not any(container.get("containername") == name for container in existing):
        _buildah("from", "--pull=never", "--name", name, reference)
    rootfs = Path(_buildah("mount", name))
    for point in MOUNT_POINTS:
        Path(inside(str(rootfs), point)).mkdir(parents=True, exist_ok=True)
    config = ImageConfig.from_oci(info["OCIv1"]["config"])
    return LocalImage(reference, rootfs, config, image_id=f"sha256:{image_id}")


class BuiltImages:
    """The built images a node agent runs: those prepared at its start, and any other a pod
    names that buildah's storage holds, found when the pod starts (as a node that had the
    image loaded, `kind load`-style: a custom phase image built from ours by the docs' steps).
    An agent started with no image of its own looks nothing up."""

    def __init__(self, images: Iterable[LocalImage]) -> None:
        self._images = list(images)
        self._look_up = bool(self._images)
        self._lock = threading.Lock()

    @property
    def references(self) -> list[str]:
        with self._lock:
            return [image.reference for image in self._images]

    def find(self, image: str) -> LocalImage | None:
        with self._lock:
            found = find_local_image(image, self._images)
            if found is not None or not self._look_up:
                return found
            try:
                found = prepare_image(image)
            except ImageNotBuilt:
                return None
            self._images.append(found)
            return found


class VolumeNotReady(Exception):
    """A volume's source is not there yet (kubelet: the pod stays ContainerCreating)."""


def prepare_volumes(
    pod: JsonDict, pod_dir: Path, secret: Callable[[str, str], Mapping[str, str] | None]
) -> dict[str, Path]:
    """A directory per volume of the pod that the agent supports: emptyDir (mode 0777, as the
    kubelet makes it) and secret (one file per key, or per ``items`` entry)."""
    namespace = str(pod["metadata"]["namespace"])
    dirs: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = str(volume["name"])
        path = pod_dir / "volumes" / name
        if "emptyDir" in volume:
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)
        elif "secret" in volume:
            source = volume["secret"]
            data = secret(namespace, str(source.get("secretName")))
            if data is None:
                if not source.get("optional"):
                    raise VolumeNotReady(f'secret "{source.get("secretName")}" not found')
                data = {}
            items = source.get("items") or [{"key": key, "path": key} for key in data]
            path.mkdir(parents=True, exist_ok=True)
            for item in items:
                file = path / str(item["path"])
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(data.get(str(item["key"]), ""))
                file.chmod(int(item.get("mode") or source.get("defaultMode") or 0o644))
        else:
            continue
        dirs[name] = path
    return dirs


def find_executable(rootfs: Path, command: str, path: str) -> str | None:
    """Where ``command`` is inside the image (on ``path``, the container's PATH), or None."""
    candidates = [command] if "/" in command else [f"{d}/{command}" for d in path.split(":") if d]
    for candidate in candidates:
        host = inside(str(rootfs), candidate)
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return candidate
    return None
