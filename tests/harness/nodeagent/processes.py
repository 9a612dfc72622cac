"""The process table: every container process the agent started, and how it ends them.

Every container runs behind a tiny Python shim in a process group of its own. The shim kills
the whole group when the pipe from the agent reports end-of-file, so a SIGKILLed agent takes
its processes with it, like a lost node. Only unreaped shims are in the table, so a signal to
a group id in it cannot hit an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from harness.nodeagent.kube import AgentKilled

INHERITED_ENV: Final = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")
INHERITED_ENV_PREFIXES: Final = ("COV_CORE_", "COVERAGE_")

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


def tail(path: Path | None, size: int) -> bytes:
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


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def which(command: str, path: str, cwd: Path) -> str | None:
    if os.sep in command:
        candidate = command if os.path.isabs(command) else str(cwd / command)
        return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None
    return shutil.which(command, path=path)


class ProcessTable:
    """The shims of running containers; :meth:`kill_all` is the lost node."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._killed = False
        self._death_read, self._death_write = os.pipe()

    def spawn(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_path: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` behind the shim, output appended to ``log_path``."""
        with self._lock:
            if self._killed:
                raise AgentKilled
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

    def signal(self, process: subprocess.Popen[bytes], signum: int) -> None:
        """Signal a container's process group, unless its shim is already being reaped."""
        with self._lock:
            if process in self._procs:
                signal_group(process.pid, signum)

    def forget(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(process)

    def kill_all(self) -> None:
        """SIGKILL every process group; no process starts after this."""
        with self._lock:
            self._killed = True
            for process in self._procs:
                signal_group(process.pid, signal.SIGKILL)

    def close(self) -> None:
        for fd in (self._death_write, self._death_read):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._death_read = self._death_write = -1


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """What every process gets before the container's own variables: the image's environment."""
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env.update({k: v for k, v in os.environ.items() if k.startswith(INHERITED_ENV_PREFIXES)})
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH") or os.defpath])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env
