"""A real Kubernetes control plane on loopback, for tests and for `make demo`.

kind needs a Docker engine, which these machines lack, and a mocked API server would prove
nothing about RBAC, the job controller or garbage collection. So this module starts etcd,
kube-apiserver (TLS, RBAC authorizer, service-account token signing) and
kube-controller-manager (job, garbage collector, service-account, token, namespace,
deployment, replica-set and cluster-role aggregation controllers) as child processes on free
loopback ports, waits until each one is really serving, and tears everything down again.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.lifecycle import Service
from harness.pki import Pki

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVISION_SCRIPT = REPO_ROOT / "scripts" / "provision-k8s.sh"
SERVICE_CIDR = "10.0.0.0/24"
START_TIMEOUT_SECONDS = 90.0
# Raised from the defaults of 20/30, which made 200 Jobs take ~34 s to get their pods.
CONTROLLER_QPS = 300
CONTROLLER_BURST = 500
CONTROLLERS = (
    "job",
    "garbagecollector",
    "serviceaccount",
    "serviceaccount-token",
    "namespace",
    "deployment",
    "replicaset",
    "podgc",
    "ttl-after-finished",
    "resourcequota",
    "clusterrole-aggregation",
)
FEATURE_GATES = "--feature-gates=TTLAfterFinished=true"
"""Alpha in the 1.20 binaries the harness runs (on by default from 1.21): phase Jobs carry
`ttlSecondsAfterFinished`."""


class ControlPlaneError(RuntimeError):
    """A component failed to start or to become ready; the message names its log."""


@dataclass(frozen=True)
class Binaries:
    apiserver: Path
    controller_manager: Path
    etcd: Path

    @classmethod
    def in_dir(cls, directory: Path) -> Binaries:
        return cls(
            apiserver=directory / "kube-apiserver",
            controller_manager=directory / "kube-controller-manager",
            etcd=directory / "etcd",
        )


def provision_binaries() -> Binaries:
    """Resolve (and on first use build) the binaries through scripts/provision-k8s.sh."""
    result = subprocess.run(
        ["bash", str(PROVISION_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"{PROVISION_SCRIPT} failed with exit code {result.returncode}")
    return Binaries.in_dir(Path(result.stdout.strip().splitlines()[-1]))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


class LocalControlPlane(Service):
    """etcd, kube-apiserver and kube-controller-manager running as child processes."""

    def __init__(
        self,
        workdir: Path,
        binaries: Binaries,
        controller_qps: int = CONTROLLER_QPS,
        controller_burst: int = CONTROLLER_BURST,
    ) -> None:
        self.workdir = workdir
        self.binaries = binaries
        self.controller_qps = controller_qps
        self.controller_burst = controller_burst
        self.pki = Pki(workdir / "pki")
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.apiserver_port = 0
        self._etcd_url = ""
        self._processes: list[_Process] = []

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki.generate()
        try:
            self._etcd_url = self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig()
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        self._processes.clear()

    def pids(self) -> dict[str, int]:
        """Each running component's process id, by name (etcd, kube-apiserver, ...)."""
        return {process.name: process.popen.pid for process in self._processes}

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver on the same port: an apiserver outage for tests."""
        apiserver = next(p for p in self._processes if p.name == "kube-apiserver")
        apiserver.stop()
        self._processes.remove(apiserver)
        self._start_apiserver(port=self.apiserver_port)

    def _spawn(self, name: str, args: list[str]) -> _Process:
        log = self.workdir / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir
        )
        handle.close()
        process = _Process(name, popen, log)
        self._processes.append(process)
        return process

    def _wait(self, process: _Process, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise ControlPlaneError(
                    f"{process.name} exited with code {process.popen.returncode} before {what}; "
                    f"log: {process.log}\n{process.tail()}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError, ssl.SSLError):
                if ready():
                    return
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{process.name} did not become ready ({what}) within {START_TIMEOUT_SECONDS:.0f}s; "
            f"log: {process.log}\n{process.tail()}"
        )

    def _start_etcd(self) -> str:
        client_port, peer_port = free_port(), free_port()
        client_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        process = self._spawn(
            "etcd",
            [
                str(self.binaries.etcd),
                f"--data-dir={self.workdir / 'etcd-data'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:
                return b'"health":"true"' in response.read()

        self._wait(process, healthy, "answering /health")
        return client_url

    def _start_apiserver(self, port: int = 0) -> None:
        self.apiserver_port = port or free_port()
        pki = self.pki
        process = self._spawn(
            "kube-apiserver",
            [
                str(self.binaries.apiserver),
                f"--etcd-servers={self._etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                "--insecure-port=0",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=RBAC",
                # The node agent's kubelet endpoint (pods/log) is on its InternalIP.
                "--kubelet-preferred-address-types=InternalIP",
                FEATURE_GATES,
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        context = self._admin_ssl_context()

        def ready() -> bool:
            url = f"{self.server}/readyz"
            with urllib.request.urlopen(url, timeout=3, context=context) as response:
                return bool(response.status == 200)

        self._wait(process, ready, "answering /readyz")

    def _start_controller_manager(self) -> None:
        process = self._spawn(
            "kube-controller-manager",
            [
                str(self.binaries.controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(CONTROLLERS)}",
                FEATURE_GATES,
                f"--service-account-private-key-file={self.pki.sa_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--kube-api-qps={self.controller_qps}",
                f"--kube-api-burst={self.controller_burst}",
                "--concurrent-gc-syncs=20",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-serviceaccount-token-syncs=10",
                "--leader-elect=false",
                "--secure-port=0",
                "--port=0",
                "--v=1",
            ],
        )
        self._wait(process, self._default_token_exists, "creating the default ServiceAccount token")

    def _default_token_exists(self) -> bool:
        context = self._admin_ssl_context()
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        try:
            with urllib.request.urlopen(url, timeout=3, context=context) as response:
                body = yaml.safe_load(response.read())
        except urllib.error.HTTPError:
            return False
        return bool(body.get("secrets"))

    def _admin_ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def _write_kubeconfig(self) -> None:
        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "collectionflow-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self.pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate-data": b64(self.pki.admin_cert),
                        "client-key-data": b64(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "collectionflow-local",
                    "context": {"cluster": "collectionflow-local", "user": "admin"},
                }
            ],
            "current-context": "collectionflow-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)


@contextlib.contextmanager
def running_control_plane(workdir: Path | None = None) -> Iterator[LocalControlPlane]:
    """Provision binaries, start a control plane in `workdir` (or a temp dir), stop it after."""
    owned = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="cf-cluster-")) if workdir is None else workdir
    plane = LocalControlPlane(directory, provision_binaries())
    try:
        with plane:
            yield plane
    finally:
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["up"], help="start and block until interrupted")
    parser.add_argument("--dir", type=Path, default=None, help="working directory (kept)")
    args = parser.parse_args(argv)
    with running_control_plane(args.dir) as plane:
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        wait_for_termination()
    return 0


def wait_for_termination() -> None:
    """Block until SIGINT or SIGTERM, so a person can stop a foreground `up` cleanly."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


if __name__ == "__main__":
    sys.exit(main())
