"""The local node agent with the real control plane: Jobs, images, and what a process gets."""

from __future__ import annotations

import base64
import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.agent_checks import (
    IMAGE,
    PYTHON,
    env_var,
    job_condition,
    job_manifest,
    python_container,
)
from harness.nodeagent.agent import NodeAgent
from harness.pods import Pods, pod_manifest
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster


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


def test_an_environment_over_the_kernels_limit_fails_to_start_with_the_runtimes_message(
    pods: Pods, node_agent: NodeAgent
) -> None:
    env = [{"name": "HUGE", "value": "x" * 200_000}]
    pods.create(pod_manifest("toolong", [_env_dump_container(["HUGE"], env)]))
    pods.wait_phase("toolong", "Failed")
    terminated = pods.container("toolong")["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("StartError", 128)
    assert "argument list too long" in terminated["message"]


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
