"""The local node agent's pod lifecycle: deadlines, deletion, restarts, and losing the agent."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import harness
from harness.agent_checks import (
    PYTHON,
    SLEEPER,
    alive,
    env_var,
    pids_in,
    python_container,
)
from harness.nodeagent.agent import NodeAgent
from harness.pods import Pods, pod_manifest
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster


# --------------------------------------------------------------------------------------------
# Lifecycle: deadline, deletion, restarts


def test_active_deadline_kills_the_pod(pods: Pods, node_agent: NodeAgent, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    container = python_container(SLEEPER, env=[env_var("PID_FILE", str(pid_file))])
    started = time.monotonic()
    pods.create(
        pod_manifest(
            "deadline", [container], activeDeadlineSeconds=2, terminationGracePeriodSeconds=1
        )
    )

    status = pods.wait_phase("deadline", "Failed")

    assert time.monotonic() - started < 15
    assert status["reason"] == "DeadlineExceeded"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] in (137, 143)
    [pid] = pids_in(pid_file)
    wait_for(lambda: not alive(pid), "the process to be gone", 5)


SIGTERM_AWARE = textwrap.dedent(
    """
    import os, pathlib, signal, sys, time
    marker = pathlib.Path(os.environ["MARKER"])
    def on_term(*_):
        marker.write_text("SIGTERM")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term if os.environ["ON_TERM"] == "exit" else signal.SIG_IGN)
    with open(os.environ["PID_FILE"], "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    while True:
        time.sleep(0.1)
    """
)


@pytest.mark.parametrize(("on_term", "grace"), [("exit", 30), ("ignore", 2)])
def test_deleting_a_running_pod_terminates_it_then_removes_it(
    pods: Pods, node_agent: NodeAgent, tmp_path: Path, on_term: str, grace: int
) -> None:
    marker, pid_file = tmp_path / "marker", tmp_path / "pids"
    env = [
        env_var("MARKER", str(marker)),
        env_var("PID_FILE", str(pid_file)),
        env_var("ON_TERM", on_term),
    ]
    manifest = pod_manifest(
        "victim", [python_container(SIGTERM_AWARE, env=env)], terminationGracePeriodSeconds=grace
    )
    pods.create(manifest)
    pods.wait_running("victim")
    [pid] = wait_for(lambda: pids_in(pid_file), "the process to write its pid")

    started = time.monotonic()
    pods.delete("victim")
    wait_for(lambda: pods.get("victim") is None, "the pod object to be removed", grace + 10)

    if on_term == "exit":
        assert marker.read_text() == "SIGTERM"
        assert time.monotonic() - started < 10, "removed long before the 30 s grace period"
    else:
        assert not marker.exists()
        assert time.monotonic() - started >= grace - 0.5, "SIGKILL only after the grace period"
    wait_for(lambda: not alive(pid), "the process to be gone", 5)


RUN_COUNTER = textwrap.dedent(
    """
    import os, sys
    with open(os.environ["RUNS"], "a") as handle:
        handle.write("run\\n")
    runs = len(open(os.environ["RUNS"]).read().split())
    sys.exit(0 if runs >= int(os.environ["SUCCEED_ON_RUN"]) else 1)
    """
)


def test_restart_policy_always_restarts_with_backoff(
    pods: Pods, node_agent: NodeAgent, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    env = [env_var("RUNS", str(runs)), env_var("SUCCEED_ON_RUN", "1000")]
    pods.create(pod_manifest("crashes", [python_container(RUN_COUNTER, env=env)], "Always"))

    container = wait_for(
        lambda: (c := pods.container("crashes")).get("restartCount", 0) >= 2 and c,
        "two restarts",
    )

    assert container["lastState"]["terminated"]["exitCode"] == 1
    assert pods.status("crashes")["phase"] in ("Running", "Pending")
    # restartCount counts a start as it begins; the third run writes its line a moment later.
    wait_for(lambda: len(runs.read_text().split()) >= 3, "the third run")


def test_restart_policy_on_failure_restarts_until_success(
    pods: Pods, node_agent: NodeAgent, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    env = [env_var("RUNS", str(runs)), env_var("SUCCEED_ON_RUN", "2")]
    pods.create(pod_manifest("flaky", [python_container(RUN_COUNTER, env=env)], "OnFailure"))

    status = pods.wait_phase("flaky", "Succeeded")

    [container] = status["containerStatuses"]
    assert container["restartCount"] == 1
    assert container["lastState"]["terminated"]["exitCode"] == 1
    assert container["state"]["terminated"]["exitCode"] == 0
    assert runs.read_text().split() == ["run", "run"]


def test_deployment_pod_keeps_running(
    api: client.ApiClient, namespace: str, node_agent: NodeAgent
) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "sleeper"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "sleeper"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [python_container("import time; time.sleep(3600)")]},
                },
            },
        },
    )

    wait_for(
        lambda: apps.read_namespaced_deployment("sleeper", namespace).status.available_replicas,
        "the Deployment to be available",
        60,
    )
    core = client.CoreV1Api(api)

    def running_pods() -> list[tuple[str | None, str | None, int]]:
        listed = core.list_namespaced_pod(namespace, label_selector="app=sleeper").items
        return [
            (pod.metadata.uid, pod.status.phase, pod.status.container_statuses[0].restart_count)
            for pod in listed
        ]

    [(uid, phase, restarts)] = running_pods()
    assert (phase, restarts) == ("Running", 0)
    time.sleep(5)  # several node-agent sync rounds
    assert running_pods() == [(uid, "Running", 0)], "the same pod, still running, never restarted"


# --------------------------------------------------------------------------------------------
# Losing the agent


@pytest.fixture
def restartable_agent(cluster: Any, node_agent: NodeAgent) -> Iterator[NodeAgent]:
    """The session agent, for a test that kills it; a working agent is left behind."""
    yield node_agent
    if cluster.local.node_agent is node_agent and node_agent.killed:
        cluster.local.start_node_agent()


def test_killed_agent_goes_silent_and_its_successor_recovers(
    cluster: Any, restartable_agent: NodeAgent, pods: Pods, tmp_path: Path
) -> None:
    never_pids, always_pids = tmp_path / "never", tmp_path / "always"
    pods.create(
        pod_manifest(
            "never", [python_container(SLEEPER, env=[env_var("PID_FILE", str(never_pids))])]
        )
    )
    pods.create(
        pod_manifest(
            "always",
            [python_container(SLEEPER, env=[env_var("PID_FILE", str(always_pids))])],
            "Always",
        )
    )
    pods.wait_running("never")
    pods.wait_running("always")
    [never_pid] = wait_for(lambda: pids_in(never_pids), "pid of never")
    [always_pid] = wait_for(lambda: pids_in(always_pids), "pid of always")

    restartable_agent.kill()

    wait_for(lambda: not alive(never_pid) and not alive(always_pid), "the processes to die", 5)
    pods.create(pod_manifest("later", [python_container("print('late')")]))
    time.sleep(2.0)
    assert pods.status("never")["phase"] == "Running", "a killed agent reports nothing"
    assert not (pods.get("later") or {})["spec"].get("nodeName"), "and schedules nothing"

    successor: NodeAgent = cluster.local.start_node_agent()
    assert successor is not restartable_agent

    status = pods.wait_phase("never", "Failed")
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "NodeAgentRestarted")
    restarted = wait_for(
        lambda: (
            (c := pods.container("always")).get("restartCount") == 1
            and c["state"].get("running")
            and c
        ),
        "always to run again",
    )
    assert restarted["lastState"]["terminated"]["reason"] == "NodeAgentRestarted"
    pids: Any = wait_for(lambda: len(p := pids_in(always_pids)) == 2 and p, "a second run")
    new_pid = pids[1]
    assert alive(new_pid)
    pods.wait_phase("later", "Succeeded")


def test_agent_carries_on_after_an_apiserver_outage(
    cluster: Any, node_agent: NodeAgent, pods: Pods, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    env = [env_var("PID_FILE", str(pid_file))]
    pods.create(pod_manifest("survivor", [python_container(SLEEPER, env=env)]))
    pods.wait_running("survivor")

    cluster.local.control_plane.restart_apiserver()

    pods.create(pod_manifest("newcomer", [python_container("print('after the outage')")]))
    pods.wait_phase("newcomer", "Succeeded", 60)
    pods.delete("survivor")
    wait_for(lambda: pods.get("survivor") is None, "the running pod to be deleted", 30)
    [pid] = pids_in(pid_file)
    assert not alive(pid)


def _start_agent_process(cluster: Any, node: str, workdir: Path) -> subprocess.Popen[bytes]:
    tests_dir = Path(harness.__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tests_dir), str(tests_dir.parent / "operator")]),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "agent.log").open("wb") as log:
        return subprocess.Popen(
            [
                PYTHON,
                "-m",
                "harness.nodeagent",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--node-name",
                node,
                "--workdir",
                str(workdir),
                "--image",
                "collectionflow-operator",
                "--no-schedule",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


@pytest.fixture
def agent_process(
    cluster: Any, node_agent: NodeAgent, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A second node agent as a process of its own, on a node of its own."""
    node = f"proc-{uuid.uuid4().hex[:8]}"
    process = _start_agent_process(cluster, node, tmp_path / "agent")
    core = client.CoreV1Api(cluster.api_client())
    try:
        wait_for(lambda: _node_ready(core, node) == "True", f"node {node} Ready", 30)
        yield node, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        try:
            core.delete_node(node)
        except ApiException as error:
            if error.status != 404:
                raise


def _node_ready(core: client.CoreV1Api, node: str) -> str | None:
    try:
        conditions = core.read_node(node).status.conditions or []
    except ApiException:
        return None
    return next((c.status for c in conditions if c.type == "Ready"), None)


def test_sigkilled_agent_process_takes_its_pods_processes_along(
    agent_process: tuple[str, subprocess.Popen[bytes]], pods: Pods, tmp_path: Path
) -> None:
    node, process = agent_process
    pid_file = tmp_path / "pids"
    container = python_container(SLEEPER, env=[env_var("PID_FILE", str(pid_file))])
    pods.create(pod_manifest("orphan", [container], nodeName=node))
    pods.wait_running("orphan")
    [pid] = wait_for(lambda: pids_in(pid_file), "the pod's process to write its pid")

    process.send_signal(signal.SIGKILL)
    process.wait(10)

    wait_for(lambda: not alive(pid), "the pod's process to die with the agent", 5)
    assert pods.status("orphan")["phase"] == "Running", "nobody reported anything"
    pods.delete("orphan", grace=0)


def test_sigterm_stops_the_agent_process_gracefully(
    agent_process: tuple[str, subprocess.Popen[bytes]], pods: Pods, tmp_path: Path
) -> None:
    node, process = agent_process
    pid_file = tmp_path / "pids"
    container = python_container(SLEEPER, env=[env_var("PID_FILE", str(pid_file))])
    pods.create(pod_manifest("stopped", [container], nodeName=node))
    pods.wait_running("stopped")
    [pid] = wait_for(lambda: pids_in(pid_file), "the pod's process to write its pid")

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0

    assert not alive(pid)
    status = pods.status("stopped")
    assert (status["phase"], status["reason"]) == ("Failed", "Shutdown")
    assert _node_ready(pods.core, node) == "False"
    pods.delete("stopped", grace=0)
