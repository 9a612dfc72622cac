"""The web view under 1,000 stored flows: how soon a status write shows in the browser.

1,000 CollectionFlows are stored in one namespace, `collectionflow ui` serves it, and headless
Chromium opens the list page. Measured: the page's first load (navigation start to the load
event, from the browser's Navigation Timing), then 100 status writes, one at a time, to flows
shown on that page: each from the moment the write is sent to the apiserver to the moment its
row is replaced in the page's DOM (a MutationObserver notes the time; both clocks are this
machine's). Reported: p50 and p99 of that latency, and the server's RSS. Targets: p99 ≤ 1 s
and first load under 1 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from selenium import webdriver

from bench.common import REPO, cluster, report_measures
from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.browser import chromium, installed
from harness.controlplane import free_port
from harness.crd import install_crd
from harness.flows import Flows
from harness.waiting import wait_for

STORED = 1000
WRITES = 100
SHOWN = 50  # the list page's first page: the newest flows
TARGET_P99_S = 1.0
TARGET_FIRST_LOAD_S = 1.0

OBSERVE = """
window.__seen = {};
new MutationObserver(function (mutations) {
  var now = performance.timeOrigin + performance.now();
  mutations.forEach(function (m) {
    m.addedNodes.forEach(function (n) {
      if (n.id && n.id.indexOf('row-') === 0) {
        var bar = n.querySelector('progress');
        window.__seen[n.id] = [now, bar ? Number(bar.value) : -1];
      }
    });
  });
}).observe(document.body, {childList: true, subtree: true});
"""
LOAD = (
    "var n = performance.getEntriesByType('navigation')[0];"
    "return [n.loadEventEnd, n.domContentLoadedEventEnd];"
)


def spec() -> dict[str, Any]:
    path = REPO / "crds" / "samples" / "collectionflow-complete-data.yaml"
    return dict(yaml.safe_load(path.read_text())["spec"])


def status(i: int) -> dict[str, Any]:
    return {
        "status": {
            "state": "Running",
            "phase": "gap_analysis",
            "attempt": 1 + i % 5,
            "progressPercentage": i % 100,
            "message": f"running phase gap_analysis (write {i})",
        }
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def serve(kubeconfig: Path, namespace: str, workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "COLLECTIONFLOW_DB__URL": f"sqlite+aiosqlite:///{workdir / 'ui.sqlite'}",
    }
    with (workdir / "ui.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "collectionflow", "ui", "--port", str(port), "-n", namespace],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        try:
            wait_for(serving, "the web view to serve", 60)
            yield base, process.pid
        finally:
            process.terminate()
            process.wait(10)


def shown_at(
    browser: webdriver.Chrome, uid: str, progress: int, after_ms: float, timeout: float
) -> float:
    """When (epoch ms) the row of `uid` was replaced, after `after_ms`, by one that shows
    `progress`: the write's own value, not any other change of the row."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = browser.execute_script("return window.__seen[arguments[0]] || null;", f"row-{uid}")
        if seen and float(seen[0]) > after_ms and int(seen[1]) == progress:
            return float(seen[0])
        time.sleep(0.005)
    raise RuntimeError(f"row-{uid}: the write did not show within {timeout:.0f}s")


def measure(workdir: Path) -> dict[str, Any]:
    with cluster(workdir) as target:
        api = target.api_client()
        install_crd(api)
        core = client.CoreV1Api(api)
        namespace = f"bench-ui-{os.urandom(3).hex()}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        flows = Flows(api, namespace)
        started = time.monotonic()
        uids = [flows.create(f"flow-{i:04d}", spec())["metadata"]["uid"] for i in range(STORED)]
        print(f"stored {STORED} flows in {time.monotonic() - started:.0f}s")
        try:
            with serve(target.kubeconfig, namespace, workdir) as (base, pid), chromium() as browser:
                rss_idle = rss_kib(pid)
                loads = []
                for _ in range(3):
                    browser.get(base + "/")
                    wait_for(lambda: browser.execute_script(LOAD)[0] > 0, "the load event", 30)
                    loads.append([float(v) / 1000 for v in browser.execute_script(LOAD)])
                browser.execute_script(OBSERVE)
                latencies = []
                shown = uids[-SHOWN:]
                for i in range(WRITES):
                    uid = shown[i % SHOWN]
                    name = f"flow-{uids.index(uid):04d}"
                    sent = time.time() * 1000
                    flows.custom.patch_namespaced_custom_object_status(
                        GROUP, VERSION, namespace, PLURAL, name, status(i)
                    )
                    progress = status(i)["status"]["progressPercentage"]
                    shown_ms = shown_at(browser, uid, progress, sent, 10)
                    latencies.append((shown_ms - sent) / 1000)
                rss_after = rss_kib(pid)
        finally:
            core.delete_namespace(namespace)
    ordered = sorted(latencies)
    return {
        "flows_stored": STORED,
        "writes": len(latencies),
        "latency_p50_s": round(statistics.median(ordered), 3),
        "latency_p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
        "latency_max_s": round(ordered[-1], 3),
        "first_load_s": round(loads[0][0], 3),
        "first_load_dom_content_loaded_s": round(loads[0][1], 3),
        "reload_s_median": round(statistics.median(load for load, _ in loads[1:]), 3),
        "server_rss_mib_after_load": round(rss_idle / 1024, 1),
        "server_rss_mib_after_writes": round(rss_after / 1024, 1),
        "target_p99_s": TARGET_P99_S,
        "target_first_load_s": TARGET_FIRST_LOAD_S,
    }


def main() -> int:
    if not installed():
        print("Debian's chromium is not installed (scripts/install-system-deps.sh)")
        return 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cf-bench-") as workdir:
        measures = measure(Path(workdir))
    report_measures("web view: a status write to the browser's DOM", "ui_latency", measures)
    print(f"took {time.monotonic() - started:.0f}s")
    met = (
        measures["latency_p99_s"] <= TARGET_P99_S and measures["first_load_s"] < TARGET_FIRST_LOAD_S
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
