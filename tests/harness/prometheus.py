"""A real Prometheus (Debian's `prometheus` package) for the tests: it scrapes given targets
every second and evaluates given rules every second, from a temporary directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.controlplane import free_port
from harness.waiting import wait_for


@dataclass
class Prometheus:
    directory: Path
    targets: list[tuple[str, dict[str, str]]]  # host:port, and the labels to add
    rule_groups: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: scripts/install-system-deps.sh installs it"
        self.directory.mkdir(parents=True, exist_ok=True)
        rules = self.directory / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": self.rule_groups}))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": "collectionflow-operator",
                    "static_configs": [
                        {"targets": [target], "labels": labels} for target, labels in self.targets
                    ],
                }
            ],
        }
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        with (self.directory / "prometheus.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, "Prometheus to be ready", timeout=60, interval=0.5)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def firing(self) -> set[str]:
        alerts = self.api("alerts")["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
