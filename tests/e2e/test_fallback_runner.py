"""When Jobs cannot run, flows still do: in the operator's own process, said loudly; with
`runner: Job` they fail with the API's reason; a lost in-process attempt is rerun."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from collectionflow.domain.registry import flow_definition
from harness.chart import find, render
from harness.cluster import Cluster
from harness.flows import Flows
from harness.operator_process import OperatorProcess
from harness.records import journal_rows
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

PHASES = [phase.name for phase in flow_definition("collection").phases]
FAST = {
    "COLLECTIONFLOW_OPERATOR__QUOTA_GRACE_SECONDS": "2",
    "COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS": "2",
}
AUTO = {**FAST, "COLLECTIONFLOW_OPERATOR__RUNNER": "Auto"}
IN_PROCESS = {**FAST, "COLLECTIONFLOW_OPERATOR__RUNNER": "InProcess"}


def quick_spec(**extra: Any) -> dict[str, Any]:
    """Seven phases of the built-in worker, no manual phase."""
    return {
        "clientAccountId": "fallback",
        "parameters": {"assets": [{"name": "web-01", "os": "linux"}]},
        "phases": [{"name": p, "manual": False} for p in PHASES],
        **extra,
    }


def no_jobs_quota(api: client.ApiClient, namespace: str) -> None:
    """A ResourceQuota of zero Jobs, once the quota controller has counted the namespace."""
    core = client.CoreV1Api(api)
    core.create_namespaced_resource_quota(
        namespace,
        {"metadata": {"name": "no-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}},
    )
    wait_for(
        lambda: core.read_namespaced_resource_quota("no-jobs", namespace).status.hard or {},
        "the quota counted",
        30,
    )


def journal_operations(url: str, uid: str) -> list[str]:
    return [entry.operation for entry in journal_rows(url, uid)]


def test_a_quota_of_zero_jobs_runs_the_flow_in_process_and_says_so(
    api: client.ApiClient,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
) -> None:
    no_jobs_quota(api, namespace)
    start_operator(db_url, **AUTO)
    uid = flows.create("quota", quick_spec())["metadata"]["uid"]

    status = flows.wait_state("quota", "Succeeded", timeout=180)
    assert [entry.get("runner") for entry in status["phaseHistory"]] == ["InProcess"] * len(
        status["phaseHistory"]
    )
    assert flows.jobs("quota") == []
    flows.wait_event("quota", "FallbackRunner")
    messages = [e.message for e in flows.events("quota") if e.reason == "FallbackRunner"]
    assert all("exceeded quota" in message for message in messages)
    assert "fallback_runner" in journal_operations(db_url, uid)
    events = [e for e in flows.events("quota") if e.reason == "FallbackRunner"]
    assert all(e.type == "Warning" for e in events)


def test_runner_job_fails_with_the_apis_reason_instead_of_falling_back(
    api: client.ApiClient,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
) -> None:
    no_jobs_quota(api, namespace)
    start_operator(db_url, **AUTO)
    flows.create("strict", quick_spec(runner="Job"))

    status = flows.wait_state("strict", "Failed", timeout=120)
    assert "exceeded quota" in status["message"]
    reasons = {c["type"]: c["reason"] for c in status["conditions"]}
    assert reasons["Succeeded"] == "JobRefused"
    assert "FallbackRunner" not in flows.event_reasons("strict")


def test_an_in_process_phase_lost_with_the_operator_is_rerun_once(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
) -> None:
    spec = quick_spec()
    spec["parameters"]["simulate"] = {"platform_detection": {"sleepSeconds": 8}}
    operator = start_operator(db_url, **IN_PROCESS)
    flows.create("lost", spec)
    flows.wait_for("lost", lambda s: s.get("phase") == "platform_detection", "second phase")
    time.sleep(1.0)
    operator.kill()
    start_operator(db_url, **IN_PROCESS)

    status = flows.wait_state("lost", "Succeeded", timeout=180)
    attempts = [(h["name"], h["attempt"], h["state"]) for h in status["phaseHistory"]]
    assert ("platform_detection", 1, "Abandoned") in attempts
    assert ("platform_detection", 2, "Succeeded") in attempts
    assert len([a for a in attempts if a[0] == "platform_detection"]) == 2, "rerun once"
    assert status["recoveries"] == 1
    stalls = [e.message for e in flows.events("lost") if e.reason == "FlowStalled"]
    assert len(stalls) == 1
    assert stalls[0].startswith("RunnerLost")


def operator_without_jobs(
    api: client.ApiClient, namespace: str, kubeconfig: Path, target: Path
) -> Path:
    """A kubeconfig of a ServiceAccount with the chart's operator rules, except that it may not
    create Jobs: what a cluster whose policy forbids the operator Jobs looks like."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "no-jobs-op"}})
    role = find(render({}), "ClusterRole", "cf-collectionflow-operator")[0]
    rules = []
    for rule in role["rules"]:
        if "jobs" in rule["resources"]:
            rule = {**rule, "verbs": [v for v in rule["verbs"] if v != "create"]}
        rules.append(rule)
    name = f"no-jobs-{namespace}"
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "no-jobs-op", "namespace": namespace}],
        }
    )

    def token_secret() -> str | None:
        account = core.read_namespaced_service_account("no-jobs-op", namespace)
        return str(account.secrets[0].name) if account.secrets else None

    secret_name = wait_for(token_secret, "the ServiceAccount's token", 30)
    secret = core.read_namespaced_secret(secret_name, namespace)
    token = base64.b64decode(secret.data["token"]).decode()
    document = yaml.safe_load(kubeconfig.read_text())
    for user in document["users"]:
        user["user"] = {"token": token}
    target.write_text(yaml.safe_dump(document))
    return target


def test_a_policy_that_denies_jobs_runs_the_flow_in_process(
    api: client.ApiClient,
    cluster: Cluster,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    tmp_path: Path,
) -> None:
    denied = operator_without_jobs(
        api, namespace, cluster.kubeconfig, tmp_path / "no-jobs.kubeconfig"
    )
    start_operator(
        db_url,
        kubeconfig=denied,
        COLLECTIONFLOW_OPERATOR__MANAGE_WORKER_RBAC="false",
        **AUTO,
    )
    uid = flows.create("denied", quick_spec())["metadata"]["uid"]

    status = flows.wait_state("denied", "Succeeded", timeout=180)
    assert {entry.get("runner") for entry in status["phaseHistory"]} == {"InProcess"}
    assert flows.jobs("denied") == []
    flows.wait_event("denied", "FallbackRunner")
    messages = [e.message for e in flows.events("denied") if e.reason == "FallbackRunner"]
    assert all("forbidden" in message for message in messages)
    assert "fallback_runner" in journal_operations(db_url, uid)


def test_a_phase_of_its_own_command_never_runs_in_the_operator(
    api: client.ApiClient,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
) -> None:
    """The in-process runner runs only the built-in worker: a phase with its own command is a
    Job even when the operator runs phases in-process, and fails when Jobs are refused."""
    own = quick_spec()
    own["phases"][0] |= {"command": ["sh", "-c", "env > /tmp/leak; exit 0"]}
    start_operator(db_url, **IN_PROCESS)
    flows.create("own", own)
    status = flows.wait_for(
        "own", lambda s: len(s.get("phaseHistory") or []) >= 2, "the second phase", 120
    )
    assert status["phaseHistory"][0]["runner"] == "Job"
    assert status["phaseHistory"][1]["runner"] == "InProcess"
    assert [job.metadata.name for job in flows.jobs("own")] == ["own-initialization-1"]

    no_jobs_quota(api, namespace)
    flows.create("own-refused", own)
    refused = flows.wait_state("own-refused", "Failed", timeout=120)
    assert "never run in the operator's process" in refused["message"]
    assert {c["type"]: c["reason"] for c in refused["conditions"]}["Succeeded"] == "JobRefused"
