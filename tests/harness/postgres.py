"""A throwaway PostgreSQL server for tests, from Debian's `postgresql` package.

The cluster lives in a temporary directory, trusts every local connection, listens only on
127.0.0.1 (a free port) and keeps its unix socket inside that directory, so it touches nothing
of the host's own PostgreSQL. As root, initdb and the server run as the `postgres` user.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Self

from harness.lifecycle import Service
from harness.pki import self_signed

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresError(RuntimeError):
    """The test server could not be provisioned, started or used."""


class PostgresServer(Service):
    """`with PostgresServer() as server: url = server.create_database("x")`.

    `halt()` stops the server and keeps its data, `start()` brings it back on the same port,
    `stop()` stops it and removes everything.
    """

    def __init__(self, *, tls: bool = False) -> None:
        """``tls``: also accept TLS connections (a self-signed certificate for 127.0.0.1),
        for URLs with ``?ssl=require`` as docs/install.md writes them."""
        self.tls = tls
        self.bin_dir = find_bin_dir()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="collectionflow-pg-"))
        self.data_dir = self.workdir / "data"
        self.socket_dir = self.workdir / "socket"
        self.log_path = self.workdir / "postgres.log"
        self._run_as = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        self._running = False

    def start(self) -> None:
        if self._running:
            return
        if not self.data_dir.exists():
            self._init_cluster()
        options = (
            f"-c listen_addresses={self.host} -p {self.port} "
            f"-c unix_socket_directories={self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        if self.tls:
            options += (
                f" -c ssl=on -c ssl_cert_file={self.workdir / 'tls' / 'postgres.crt'}"
                f" -c ssl_key_file={self.workdir / 'tls' / 'postgres.key'}"
            )
        started = self._run_server_command(
            [
                str(self.bin_dir / "pg_ctl"),
                "start",
                "--wait",
                f"--timeout={START_TIMEOUT_SECONDS}",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-o",
                options,
            ]
        )
        if started.returncode != 0:
            raise PostgresError(
                f"PostgreSQL did not become ready on {self.host}:{self.port} within "
                f"{START_TIMEOUT_SECONDS}s (pg_ctl: {started.stdout.strip()}); "
                f"server log: {self.log_path}\n{self._log_tail()}"
            )
        self._running = True

    def halt(self) -> None:
        """Stop the server (fast: open connections are terminated) and keep its data."""
        if not self._running:
            return
        self._run_server_command(
            [str(self.bin_dir / "pg_ctl"), "stop", "--wait", "-m", "fast", "-D", str(self.data_dir)]
        )
        self._running = False

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.halt()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its `postgresql+asyncpg://` URL."""
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
        created = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "--no-psqlrc",
                "--set=ON_ERROR_STOP=1",
                f"--host={self.host}",
                f"--port={self.port}",
                f"--username={SUPERUSER}",
                "--dbname=postgres",
                f"--command=CREATE DATABASE {name}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            raise PostgresError(f"CREATE DATABASE {name} failed: {created.stderr.strip()}")
        return self.url(name)

    def __enter__(self) -> Self:
        """Start, or clean up what a failed start left behind (its temporary data dir)."""
        try:
            return super().__enter__()
        except BaseException:
            self.stop()
            raise

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def _init_cluster(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            shutil.chown(self.workdir, user=SUPERUSER)
            shutil.chown(self.socket_dir, user=SUPERUSER)
        initialised = self._run_server_command(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        if initialised.returncode != 0:
            raise PostgresError(f"initdb failed in {self.data_dir}: {initialised.stdout.strip()}")
        if self.tls:
            tls = self.workdir / "tls"
            cert, key = self_signed(tls, "postgres")
            key.chmod(0o600)
            if self._run_as:
                for path in (tls, cert, key):
                    shutil.chown(path, user=SUPERUSER)

    def _run_server_command(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._run_as, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(log unreadable: {error})"


def find_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory, installing the package if needed."""
    found = _installed_bin_dirs()
    if not found:
        _install_postgresql()
        found = _installed_bin_dirs()
    if not found:
        raise PostgresError(f"no initdb/pg_ctl under {POSTGRES_BIN_GLOB} after installing")
    return found[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _installed_bin_dirs() -> list[Path]:
    candidates = [
        path
        for path in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/"))
        if (path / "initdb").exists() and (path / "pg_ctl").exists()
    ]
    return sorted(candidates, key=lambda path: int(path.parent.name.split(".")[0]))


def _install_postgresql() -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        [*sudo, "apt-get", "update"],
        [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
    ):
        installed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if installed.returncode != 0:
            raise PostgresError(
                f"PostgreSQL is not installed and `{' '.join(command)}` failed: "
                f"{installed.stderr.strip()[-2000:]}"
            )
