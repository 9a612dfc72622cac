"""The local node agent against the real control plane: the controllers act on what it reports.

Every pod here runs the venv's Python (`sys.executable`) from our own image name, so the tests
need the local node agent; they skip when KUBECONFIG points at another cluster.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
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
from harness.cluster import VENV_IMAGE
from harness.nodeagent import NodeAgent
from harness.pods import Pods, pod_manifest
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster

PYTHON = sys.executable
IMAGE = VENV_IMAGE

# Appends its pid to $PID_FILE, then sleeps until killed.
SLEEPER = textwrap.dedent(
    """
    import os, time
    with open(os.environ["PID_FILE"], "a") as handle:
        handle.write(f"{os.getpid()}\\n")
    while True:
        time.sleep(0.1)
    """
)


def python_container(script: str, name: str = "main", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": [PYTHON, "-c", script], **extra}


def env_var(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def pids_in(path: Path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (orphans are reaped by whoever is init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def job_manifest(name: str, script: str, backoff_limit: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [python_container(script)],
                }
            },
        },
    }


def job_condition(batch: client.BatchV1Api, namespace: str, name: str, kind: str) -> Any:
    job = batch.read_namespaced_job(name, namespace)
    for condition in job.status.conditions or []:
        if condition.type == kind and condition.status == "True":
            return job
    return None


# --------------------------------------------------------------------------------------------
# Jobs through the real job controller


def test_job_whose_command_succeeds_completes(
    api: client.ApiClient, namespace: str, node_agent: NodeAgent, pods: Pods
) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(namespace, job_manifest("ok", "print('phase done')", 0))

    job = wait_for(lambda: job_condition(batch, namespace, "ok", "Complete"), "Job Complete", 60)

    assert job.status.succeeded == 1
    [pod] = pods.core.list_namespaced_pod(namespace, label_selector="job-name=ok").items
    assert pod.spec.node_name == node_agent.node_name
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert node_agent.container_log(namespace, pod.metadata.name, "main") == "phase done\n"


def test_job_whose_command_fails_fails_after_backoff_limit(
    api: client.ApiClient, namespace: str, node_agent: NodeAgent, pods: Pods
) -> None:
    batch = client.BatchV1Api(api)
    script = "import sys; print('cannot continue', file=sys.stderr); sys.exit(3)"
    batch.create_namespaced_job(namespace, job_manifest("bad", script, 1))

    job = wait_for(lambda: job_condition(batch, namespace, "bad", "Failed"), "Job Failed", 90)

    assert job.status.failed == 2
    assert [c.reason for c in job.status.conditions if c.type == "Failed"] == [
        "BackoffLimitExceeded"
    ]
    items = pods.core.list_namespaced_pod(namespace, label_selector="job-name=bad").items
    assert [p.status.phase for p in items] == ["Failed", "Failed"]
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in items} == {3}


# --------------------------------------------------------------------------------------------
# Images


def test_unknown_image_never_runs_and_backs_off(
    pods: Pods, node_agent: NodeAgent, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    container = {
        "name": "main",
        "image": "docker.io/library/busybox:1.36",
        "command": [PYTHON, "-c", f"open({str(marker)!r}, 'w')"],
    }
    pods.create(pod_manifest("foreign", [container]))

    reasons: list[str] = []

    def backing_off() -> bool:
        waiting = pods.container("foreign").get("state", {}).get("waiting") or {}
        if waiting.get("reason") and waiting["reason"] not in reasons:
            reasons.append(waiting["reason"])
        return waiting.get("reason") == "ImagePullBackOff"

    wait_for(backing_off, "ImagePullBackOff")

    assert reasons[:2] == ["ErrImagePull", "ImagePullBackOff"]
    status = pods.status("foreign")
    assert status["phase"] == "Pending"
    message = status["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "not available to the local node agent" in message
    time.sleep(1.0)
    assert not marker.exists()
    assert pods.status("foreign")["phase"] == "Pending"


def test_pod_with_unmatched_node_selector_is_not_scheduled(
    pods: Pods, node_agent: NodeAgent
) -> None:
    manifest = pod_manifest("nowhere", [python_container("pass")], nodeSelector={"disktype": "ssd"})
    pods.create(manifest)

    condition = wait_for(
        lambda: next(
            (
                c
                for c in pods.status("nowhere").get("conditions") or []
                if c["type"] == "PodScheduled"
            ),
            None,
        ),
        "PodScheduled condition",
    )

    assert (condition["status"], condition["reason"]) == ("False", "Unschedulable")
    assert not (pods.get("nowhere") or {})["spec"].get("nodeName")


# --------------------------------------------------------------------------------------------
# What the process gets: identity, environment, termination message


IDENTITY_PROBE = textwrap.dedent(
    """
    import os
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    config.load_kube_config()
    try:
        client.CoreV1Api().list_namespaced_pod(os.environ["NAMESPACE"])
        result = "allowed"
    except ApiException as error:
        result = f"{error.status} {error.body}"
    with open(os.environ["TERMINATION_MESSAGE_PATH"], "w") as handle:
        handle.write(result[:3000])
    """
)


def test_process_acts_as_the_pods_service_account(
    api: client.ApiClient, namespace: str, node_agent: NodeAgent, pods: Pods
) -> None:
    core = pods.core
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    wait_for(
        lambda: core.read_namespaced_service_account("reader", namespace).secrets,
        "the ServiceAccount's token",
    )
    namespace_env = {
        "name": "NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }

    def probe(name: str) -> str:
        container = python_container(IDENTITY_PROBE, env=[namespace_env])
        pods.create(pod_manifest(name, [container], serviceAccountName="reader"))
        pods.wait_phase(name, "Succeeded", 60)
        message: str = pods.container(name)["state"]["terminated"]["message"]
        return message

    denied = probe("before-binding")
    assert denied.startswith("403 ")
    assert f"system:serviceaccount:{namespace}:reader" in denied

    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )

    assert probe("after-binding") == "allowed"


ENV_DUMP = textwrap.dedent(
    """
    import json, os, sys
    names = sys.argv[1].split(",")
    values = {name: os.environ.get(name) for name in names}
    values["argv"] = sys.argv[2:]
    with open(os.environ["TERMINATION_MESSAGE_PATH"], "w") as handle:
        json.dump(values, handle)
    """
)


def _env_dump_container(
    names: list[str], env: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "name": "main",
        "image": IMAGE,
        "command": [PYTHON, "-c", ENV_DUMP, ",".join(names)],
        "args": ["$(MODE)", "$$(MODE)"],
        "env": env,
        **extra,
    }


def test_env_from_literals_secrets_config_maps_and_fields(
    pods: Pods, namespace: str, node_agent: NodeAgent
) -> None:
    core = pods.core
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "creds"}, "data": {"password": base64.b64encode(b"s3cret").decode()}},
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"mode": "fast", "level": "3"}}
    )

    def field(path: str) -> dict[str, Any]:
        return {"fieldRef": {"fieldPath": path}}

    env = [
        env_var("LITERAL", "plain"),
        env_var("EXPANDED", "$(LITERAL)-x-$$(LITERAL)"),
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {
            "name": "OPTIONAL",
            "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}},
        },
        {"name": "POD_NAME", "valueFrom": field("metadata.name")},
        {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
        {"name": "POD_UID", "valueFrom": field("metadata.uid")},
        {"name": "NODE_NAME", "valueFrom": field("spec.nodeName")},
        {"name": "SERVICE_ACCOUNT", "valueFrom": field("spec.serviceAccountName")},
        {"name": "POD_IP", "valueFrom": field("status.podIP")},
    ]
    names = [e["name"] for e in env] + [
        "CFG_level",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "HOSTNAME",
    ]
    container = _env_dump_container(
        names, env, envFrom=[{"prefix": "CFG_", "configMapRef": {"name": "settings"}}]
    )
    created = pods.create(pod_manifest("env", [container]))

    pods.wait_phase("env", "Succeeded")

    dumped = json.loads(pods.container("env")["state"]["terminated"]["message"])
    server_port = node_agent.config.service_env["KUBERNETES_SERVICE_PORT"]
    assert dumped == {
        "LITERAL": "plain",
        "EXPANDED": "plain-x-$(LITERAL)",
        "PASSWORD": "s3cret",
        "MODE": "fast",
        "OPTIONAL": None,
        "POD_NAME": "env",
        "POD_NAMESPACE": namespace,
        "POD_UID": created["metadata"]["uid"],
        "NODE_NAME": node_agent.node_name,
        "SERVICE_ACCOUNT": "default",
        "POD_IP": "127.0.0.1",
        "CFG_level": "3",
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": server_port,
        "HOSTNAME": "env",
        "argv": ["fast", "$(MODE)"],
    }


def test_missing_secret_keeps_the_container_waiting_until_it_exists(
    pods: Pods, namespace: str, node_agent: NodeAgent
) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    pods.create(pod_manifest("waits", [_env_dump_container(["TOKEN"], env)]))

    waiting = wait_for(
        lambda: (
            pods.container("waits").get("state", {}).get("waiting", {}).get("reason")
            == "CreateContainerConfigError"
            and pods.container("waits")["state"]["waiting"]
        ),
        "CreateContainerConfigError",
    )
    assert waiting["message"] == 'secret "later" not found'
    assert pods.status("waits")["phase"] == "Pending"

    pods.core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "later"}, "data": {"token": base64.b64encode(b"t0k").decode()}},
    )
    pods.wait_phase("waits", "Succeeded")
    assert json.loads(pods.container("waits")["state"]["terminated"]["message"])["TOKEN"] == "t0k"


def test_termination_message_and_fallback_to_logs(pods: Pods, node_agent: NodeAgent) -> None:
    writes = python_container(
        "import os; open(os.environ['TERMINATION_MESSAGE_PATH'], 'w').write("
        '\'{"state": "succeeded"}\')',
        name="writes",
    )
    falls_back = python_container(
        "import sys; print('warming up'); print('boom: the source is gone', file=sys.stderr);"
        " sys.exit(2)",
        name="falls-back",
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    silent = python_container("import sys; sys.exit(4)", name="silent")
    pods.create(pod_manifest("messages", [writes, falls_back, silent]))

    status = pods.wait_phase("messages", "Failed")

    by_name = {c["name"]: c["state"]["terminated"] for c in status["containerStatuses"]}
    assert by_name["writes"]["message"] == '{"state": "succeeded"}'
    assert (by_name["writes"]["exitCode"], by_name["writes"]["reason"]) == (0, "Completed")
    assert by_name["falls-back"]["message"] == "warming up\nboom: the source is gone\n"
    assert (by_name["falls-back"]["exitCode"], by_name["falls-back"]["reason"]) == (2, "Error")
    assert "message" not in by_name["silent"]
    assert by_name["silent"]["exitCode"] == 4


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
