"""The web view in a real browser (Debian's headless Chromium): flows run on the local cluster
while the page is open, and it follows them without a reload."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.common.by import By

from collectionflow.api.models import GROUP, PLURAL, VERSION
from harness.browser import chromium, installed
from harness.cluster import Cluster
from harness.controlplane import free_port
from harness.flows import REPO, Flows
from harness.operator_process import OperatorProcess
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e


def quick_spec(**simulate: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (REPO / "crds" / "samples" / "collectionflow-complete-data.yaml").read_text()
    )["spec"]
    spec["parameters"]["simulate"] = simulate
    return spec


@pytest.fixture
def ui(cluster: Cluster, namespace: str, db_url: str, tmp_path: Path) -> Iterator[str]:
    """`collectionflow ui` for the test's namespace; yields its base URL."""
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "COLLECTIONFLOW_DB__URL": db_url}
    log = (tmp_path / "ui.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "collectionflow", "ui", "--port", str(port), "-n", namespace],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: status_of(base + "/") == 200, "the web view to serve", 30)
        yield base
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not installed():
        missing = "Debian's chromium is not installed (scripts/install-system-deps.sh)"
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI installs it: a browser test never passes by skipping
        pytest.skip(missing)
    with chromium() as driver:
        yield driver


def status_of(url: str, method: str = "GET", host: str | None = None) -> int:
    request = urllib.request.Request(url, method=method)
    if host:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def notes(browser: webdriver.Chrome) -> list[tuple[str, str]]:
    shown: list[list[str]] = browser.execute_script(
        "return Array.from(document.querySelectorAll('#notes .note'))"
        ".map(n => [n.className, n.textContent]);"
    )
    return [(kind, text) for kind, text in shown]


ROW = """
var row = document.getElementById(arguments[0]);
if (!row) { return null; }
return [row.querySelector('progress').value, row.querySelector('.phase').textContent,
        row.querySelector('.state').textContent];
"""


def row(browser: webdriver.Chrome, uid: str) -> tuple[int, str, str] | None:
    """Progress, phase and state of the flow's row as shown; None while it is not there.
    Read in one script: htmx may swap the row between two separate reads."""
    shown = browser.execute_script(ROW, f"row-{uid}")
    if shown is None:
        return None
    return int(shown[0]), str(shown[1]).strip(), str(shown[2]).strip()


def after_everything_sent(flows: Flows, browser: webdriver.Chrome) -> None:
    """Wait until what the view sent so far has reached the page: one stream carries it in
    order, so once a flow created now shows its row, any second notification of an earlier
    flow would have arrived before it."""
    uid = flows.create(f"marker-{time.monotonic_ns()}", quick_spec())["metadata"]["uid"]
    wait_for(lambda: row(browser, uid), "the marker flow's row", 15)


def test_the_list_follows_a_flow_live_and_notifies_once_when_it_succeeds(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    ui: str,
    browser: webdriver.Chrome,
) -> None:
    browser.get(ui + "/")
    browser.execute_script("window.cfLoaded = 'same page';")
    start_operator(db_url)
    slow = {"sleepSeconds": 1.5}
    uid = flows.create("live", quick_spec(platform_detection=slow, gap_analysis=slow))["metadata"][
        "uid"
    ]

    seen: list[tuple[int, str, str]] = []
    deadline = time.monotonic() + 120
    while not seen or seen[-1][2] != "Succeeded":
        assert time.monotonic() < deadline, f"the row never showed Succeeded: {seen[-3:]}"
        shown = row(browser, uid)
        if shown is not None and (not seen or shown != seen[-1]):
            seen.append(shown)
            if shown[2] != "Succeeded":
                assert notes(browser) == [], "no notification before the flow ends"
        time.sleep(0.1)

    progress = [p for p, _, _ in seen]
    assert progress == sorted(progress), "the bar only moves forward"
    assert progress[0] < 50
    assert progress[-1] == 100
    assert len({phase for _, phase, _ in seen}) >= 3, "the phase text changed in place"
    wait_for(lambda: notes(browser), "the success notification", 10)
    after_everything_sent(flows, browser)
    [(kind, text)] = notes(browser)
    assert "ok" in kind
    assert "live" in text
    assert "succeeded" in text
    assert browser.execute_script("return window.cfLoaded;") == "same page", "no reload"


def test_a_failing_flow_notifies_once_and_its_page_shows_the_journal(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    ui: str,
    browser: webdriver.Chrome,
    namespace: str,
) -> None:
    browser.get(ui + "/")
    start_operator(db_url)
    spec = quick_spec(gap_analysis={"exitCode": 3})
    spec["phases"] = [{"name": "gap_analysis", "retries": 0}]
    flows.create("broken", spec)
    flows.wait_state("broken", "Failed", timeout=120)
    wait_for(lambda: notes(browser), "the failure notification", 15)
    after_everything_sent(flows, browser)
    [(kind, text)] = notes(browser)
    assert "bad" in kind
    assert "broken" in text
    assert "failed" in text

    browser.get(f"{ui}/flows/{namespace}/broken")
    journal = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, ".journal-row"), "a journal row", 15
    )
    assert "gap_analysis" in journal[0].text
    assert "run_phase" in journal[0].text
    states = [
        cell.text for cell in browser.find_elements(By.CSS_SELECTOR, ".attempt td:nth-child(3)")
    ]
    assert "Failed" in states


def test_a_flow_waiting_for_input_shows_the_command_that_gives_it(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    ui: str,
    browser: webdriver.Chrome,
    namespace: str,
) -> None:
    start_operator(db_url)
    spec = yaml.safe_load((REPO / "crds" / "samples" / "collectionflow-sample.yaml").read_text())[
        "spec"
    ]
    spec["parameters"].pop("simulate", None)
    flows.create("asks", spec)
    flows.wait_state("asks", "WaitingForInput", timeout=120)
    browser.get(f"{ui}/flows/{namespace}/asks")
    command = wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "pre.command"), "the input command", 15
    )[0].text
    assert command.startswith(f"kubectl annotate collectionflow asks -n {namespace} ")
    assert "flows.collectionflow.io/input-complete=true" in command


def test_the_view_answers_only_gets_for_its_own_host_under_a_csp(ui: str) -> None:
    """No browser needed: these run wherever the cluster does."""
    assert status_of(ui + "/", host="evil.example") == 400, "a foreign Host header"
    assert status_of(ui + "/", method="POST") == 405
    assert status_of(ui + "/events", method="DELETE") == 405
    with urllib.request.urlopen(ui + "/", timeout=5) as response:
        assert response.headers["Content-Security-Policy"] == "default-src 'self'"
    with urllib.request.urlopen(ui + "/events", timeout=5) as response:
        assert response.headers["X-Accel-Buffering"] == "no"
        assert response.headers["Content-Type"].startswith("text/event-stream")


def test_the_view_shows_user_text_as_text(
    flows: Flows, ui: str, browser: webdriver.Chrome, namespace: str
) -> None:
    flows.create("sneaky", quick_spec())
    flows.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        "sneaky",
        {"status": {"state": "Failed", "message": "<script>window.hacked = 1</script>"}},
    )
    browser.get(f"{ui}/flows/{namespace}/sneaky")
    message = wait_for(
        lambda: [m for m in browser.find_elements(By.CSS_SELECTOR, "p.message") if m.text],
        "the message",
        15,
    )[0]
    assert message.text == "<script>window.hacked = 1</script>"
    assert message.find_elements(By.TAG_NAME, "script") == []
    assert browser.execute_script("return window.hacked;") is None


def test_a_flow_held_by_an_image_pull_shows_why_at_the_top_live(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    namespace: str,
    ui: str,
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    image = "example.invalid/missing:1"
    start_operator(db_url)
    flows.create("healthy", quick_spec())
    stuck = quick_spec()
    stuck["phases"] = [{"name": "initialization", "image": image, "stallTimeoutSeconds": 120}]
    flows.create("stuck", stuck)
    flows.wait_state("stuck", "Running", timeout=30)
    browser.set_window_size(1280, 900)
    browser.get(f"{ui}/flows/{namespace}/stuck")
    browser.execute_script("window.cfLoaded = 'same page';")

    def held() -> str | None:
        found = browser.find_elements(By.CSS_SELECTOR, "#live .diagnosis.held")
        return found[0].text if found else None

    text = wait_for(held, "the diagnosis at the top of the flow page", 30, interval=0.25)
    assert "pod cannot start" in text
    assert image in text
    assert "PodNotStarting at" in text
    assert browser.execute_script("return window.cfLoaded;") == "same page", "no reload"
    started = browser.find_element(By.CSS_SELECTOR, ".timeline time").text
    assert started.endswith("ago"), started
    assert "so far" in browser.find_element(By.CSS_SELECTOR, ".timeline .elapsed").text
    browser.save_screenshot(str(tmp_path / "flow-held.png"))

    flows.wait_state("healthy", "Succeeded", timeout=60)
    browser.get(f"{ui}/")
    marked = wait_for(
        lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".state.held")],
        "the list marking the held flow",
        30,
    )
    assert marked == ["Running (held)"]
    browser.save_screenshot(str(tmp_path / "list.png"))
    browser.get(f"{ui}/flows/{namespace}/healthy")
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".timeline tr.attempt"), "timeline")
    browser.save_screenshot(str(tmp_path / "flow.png"))
    for name in ("flow-held.png", "list.png", "flow.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    shots = os.environ.get("COLLECTIONFLOW_SCREENSHOTS")
    if shots:  # `COLLECTIONFLOW_SCREENSHOTS=docs/images make test` refreshes the README's
        for name in ("flow-held.png", "list.png", "flow.png"):
            Path(shots, name).write_bytes((tmp_path / name).read_bytes())
