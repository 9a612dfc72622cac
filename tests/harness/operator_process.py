"""The operator as a process: `python -m collectionflow run` exactly as a user runs it, so a
test can SIGKILL it in the middle of a phase and start another one, as a crash and a restart
would; and its metrics, as Prometheus scrapes them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from harness.controlplane import free_port

REPO = Path(__file__).resolve().parents[2]


def scrape_metric(url: str, sample: str) -> float | None:
    """One sample (name with its labels, as exposed) of the metrics at `url`; None when the
    endpoint does not answer or lacks the sample."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        if key == sample:
            return float(value)
    return None


@dataclass
class OperatorProcess:
    """`collectionflow run` for one namespace, with its log kept for failure reports."""

    kubeconfig: Path
    namespace: str
    db_url: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    metrics_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}/healthz"

    def metric(self, sample: str) -> float | None:
        """One sample of this operator's metrics (name with labels, as exposed); None while
        it serves none."""
        return scrape_metric(self.metrics_url, sample)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "COLLECTIONFLOW_DB__URL": self.db_url,
            "COLLECTIONFLOW_OPERATOR__HEARTBEAT_SECONDS": "1",
            "COLLECTIONFLOW_OPERATOR__RESYNC_SECONDS": "5",
            "COLLECTIONFLOW_OPERATOR__ALLOW_SIMULATION": "true",
            "COLLECTIONFLOW_OPERATOR__METRICS_PORT": str(self.metrics_port),
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "collectionflow",
                    "run",
                    "--namespace",
                    self.namespace,
                    "--liveness-port",
                    str(self.health_port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a crashed or evicted pod."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""
