"""Enter a container built from an image's filesystem, then exec its command.

The local node agent runs this (as root, with the host's Python, ``-I -S``) in place of a
container's command when the pod's image is a locally built one. It does what a container
runtime does for a pod here, with only the standard library:

1. a private mount namespace;
2. the image's filesystem as an overlay (the image read-only below, a per-container layer
   above) on the container's root directory;
3. ``/proc``, a ``/dev`` with the usual devices, the pod's volumes (emptyDir directories and
   secret files, the ServiceAccount token among them) and the termination-message file, at
   their paths *inside* the root: symbolic links are resolved within the root, never on the
   host (``/var/run`` is a link to ``/run`` in Debian images);
4. the root made read-only when the container asks for ``readOnlyRootFilesystem``;
5. chroot, the working directory, the user and group, and ``execvpe`` with the container's
   environment (its ``PATH`` finds the command).

Its one argument is a JSON object; see :func:`enter`. Failures print one line and exit 127.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any, Final

CLONE_NEWNS: Final = 0x00020000
MS_RDONLY: Final = 0x1
MS_NOSUID: Final = 0x2
MS_NODEV: Final = 0x4
MS_NOEXEC: Final = 0x8
MS_REMOUNT: Final = 0x20
MS_BIND: Final = 0x1000
MS_REC: Final = 0x4000
MS_PRIVATE: Final = 0x40000
DEVICES: Final = ("null", "zero", "full", "random", "urandom", "tty")
MAX_LINKS: Final = 40

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _libc.mount(
            None if source is None else source.encode(),
            target.encode(),
            None if fstype is None else fstype.encode(),
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source or fstype} on {target}",
    )


def inside(root: str, path: str) -> str:
    """The host path of ``path`` in the container, symbolic links resolved within ``root``."""
    parts = [part for part in path.split("/") if part and part != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > MAX_LINKS:
                raise OSError(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _mount_point(root: str, path: str, is_file: bool) -> str:
    target = inside(root, path)
    if is_file:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            with open(target, "ab"):
                pass
    else:
        os.makedirs(target, exist_ok=True)
    return target


def _bind(source: str, target: str, readonly: bool) -> None:
    _mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC)


def _dev(root: str) -> None:
    dev = _mount_point(root, "/dev", is_file=False)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k")
    for name in DEVICES:
        node = os.path.join(dev, name)
        with open(node, "ab"):
            pass
        _bind(f"/dev/{name}", node, readonly=False)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, os.path.join(dev, name))
    os.makedirs(os.path.join(dev, "shm"), mode=0o1777)
    os.chmod(os.path.join(dev, "shm"), 0o1777)


def enter(spec: dict[str, Any]) -> None:
    """Set the container up as ``spec`` says and exec its command; returns only on error.

    ``spec``: ``lower`` (the image's filesystem), ``upper``, ``work`` and ``root`` (the
    container's own directories), ``readonly``, ``mounts`` (``source``, ``target``,
    ``readonly``, ``file``; in order), ``uid``, ``gid``, ``cwd``, ``argv``, ``env``.
    """
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = spec["root"]
    _mount(
        "overlay",
        root,
        "overlay",
        0,
        f"lowerdir={spec['lower']},upperdir={spec['upper']},workdir={spec['work']}",
    )
    _mount("proc", _mount_point(root, "/proc", False), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _dev(root)
    for mount in spec["mounts"]:
        target = _mount_point(root, mount["target"], mount["file"])
        _bind(mount["source"], target, mount["readonly"])
    if spec["readonly"]:
        _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    os.chroot(root)
    os.chdir(spec["cwd"])
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    argv = spec["argv"]
    os.execvpe(argv[0], argv, spec["env"])


def main() -> None:
    try:
        with open(sys.argv[1], encoding="utf-8") as launch:
            enter(json.load(launch))
    except (OSError, KeyError, ValueError) as error:
        sys.stderr.write(f"nodeagent: cannot start the container: {error}\n")
        sys.stderr.flush()
        os._exit(127)


if __name__ == "__main__":
    main()
