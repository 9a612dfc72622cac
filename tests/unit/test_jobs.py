"""The phase Job and the workers' RBAC, as manifests."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest

from collectionflow.api.contract import WorkerRequest
from collectionflow.api.models import CollectionFlowSpec
from collectionflow.api.names import job_name
from collectionflow.api.reasons import EventReason
from collectionflow.domain.plan import PhaseConfig, plan_for
from collectionflow.specs.events import event_manifest
from collectionflow.specs.jobs import WORKER_COMMAND, PhaseJobRequest, build_phase_job
from collectionflow.specs.rbac import WORKER_RULES, build_worker_rbac

pytestmark = pytest.mark.unit

UID = "6f1f2c84-9a53-4c1e-8d1e-3b8f0f4a9c21"
IMAGE = "registry.example/collectionflow:1.0"


def phase_config(phase: str = "gap_analysis", **override: Any) -> PhaseConfig:
    spec = CollectionFlowSpec.model_validate(
        {"phases": [{"name": phase, **override}]} if override else {}
    )
    return plan_for(spec).phase(phase)


def request(phase: PhaseConfig | None = None, **fields: Any) -> PhaseJobRequest:
    """A request for `phase`; `fields` override the worker's or the Job's settings."""
    config = phase or phase_config()
    worker: dict[str, Any] = {
        "namespace": "team-a",
        "flow_name": "demo",
        "flow_uid": UID,
        "flow_type": "collection",
        "phase": config.name,
        "attempt": 2,
        "heartbeat_seconds": 5.0,
        "parameters": {"tenant": "acme", "depth": 3},
        "previous_outputs": {"initialization": {"ok": True}},
    }
    job: dict[str, Any] = {
        "image": IMAGE,
        "service_account": "collectionflow-worker",
        "image_pull_policy": "IfNotPresent",
    }
    contract = {f.name for f in dataclasses.fields(WorkerRequest)}
    job |= {k: v for k, v in fields.items() if k not in contract}
    worker |= {k: v for k, v in fields.items() if k in contract}
    return PhaseJobRequest(worker=WorkerRequest(**worker), phase=config, **job)


def pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def container(job: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(job)["containers"]
    assert len(containers) == 1
    return containers[0]


def env(job: dict[str, Any]) -> dict[str, str]:
    """The plain values of the container's environment (downward-API entries left out)."""
    pairs = [(e["name"], e["value"]) for e in container(job)["env"] if "value" in e]
    assert len(pairs) == len(dict(pairs)), "duplicate env names"
    return dict(pairs)


def test_job_identity() -> None:
    job = build_phase_job(request())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == job_name("demo", "gap_analysis", 2) == "demo-gap-analysis-2"
    assert job["metadata"]["namespace"] == "team-a"


def test_job_is_owned_by_the_flow() -> None:
    assert build_phase_job(request())["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "flows.collectionflow.io/v1alpha1",
            "kind": "CollectionFlow",
            "name": "demo",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_job_and_pod_carry_the_labels() -> None:
    job = build_phase_job(request())
    expected = {
        "flows.collectionflow.io/flow": "demo",
        "flows.collectionflow.io/flow-uid": UID,
        "flows.collectionflow.io/phase": "gap-analysis",
        "flows.collectionflow.io/attempt": "2",
        "app.kubernetes.io/managed-by": "collectionflow-operator",
    }
    assert job["metadata"]["labels"] == expected
    assert job["spec"]["template"]["metadata"]["labels"] == expected


@pytest.mark.parametrize(
    ("phase", "override", "retries", "timeout"),
    [
        ("gap_analysis", {}, 2, 600),
        ("automated_collection", {}, 2, 1800),
        ("gap_analysis", {"retries": 0, "timeoutSeconds": 30}, 0, 30),
        ("synthesis", {"retries": 9}, 9, 600),
    ],
)
def test_retries_and_timeout_come_from_the_phase(
    phase: str, override: dict[str, Any], retries: int, timeout: int
) -> None:
    spec = build_phase_job(request(phase_config(phase, **override)))["spec"]
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"]) == (retries, timeout)


def test_finished_jobs_have_a_ttl_only_when_one_is_set() -> None:
    assert "ttlSecondsAfterFinished" not in build_phase_job(request())["spec"]
    job = build_phase_job(request(ttl_seconds_after_finished=3600))
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600


def test_pod_runs_restricted() -> None:
    job = build_phase_job(request())
    pod = pod_spec(job)
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container(job)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_read_only_root_has_a_writable_tmp() -> None:
    job = build_phase_job(request())
    assert {"name": "tmp", "mountPath": "/tmp"} in container(job)["volumeMounts"]
    assert [v["name"] for v in pod_spec(job)["volumes"]] == ["tmp"]


def test_pod_uses_the_service_account() -> None:
    assert pod_spec(build_phase_job(request()))["serviceAccountName"] == "collectionflow-worker"


def test_default_container_runs_the_worker() -> None:
    job = build_phase_job(request())
    worker = container(job)
    assert worker["image"] == IMAGE
    assert worker["command"] == list(WORKER_COMMAND) == ["collectionflow", "worker"]
    assert "args" not in worker
    assert worker["terminationMessagePath"] == "/dev/termination-log"


def test_worker_environment_contract() -> None:
    values = env(build_phase_job(request()))
    name = "demo-gap-analysis-2"
    assert values == {
        "COLLECTIONFLOW_FLOW_NAMESPACE": "team-a",
        "COLLECTIONFLOW_FLOW_NAME": "demo",
        "COLLECTIONFLOW_FLOW_UID": UID,
        "COLLECTIONFLOW_FLOW_TYPE": "collection",
        "COLLECTIONFLOW_PHASE": "gap_analysis",
        "COLLECTIONFLOW_ATTEMPT": "2",
        "COLLECTIONFLOW_JOB_NAME": name,
        "COLLECTIONFLOW_PARAMETERS": values["COLLECTIONFLOW_PARAMETERS"],
        "COLLECTIONFLOW_PREVIOUS_OUTPUTS": values["COLLECTIONFLOW_PREVIOUS_OUTPUTS"],
        "COLLECTIONFLOW_HEARTBEAT_LEASE": name,
        "COLLECTIONFLOW_HEARTBEAT_SECONDS": "5",
    }
    assert json.loads(values["COLLECTIONFLOW_PARAMETERS"]) == {"tenant": "acme", "depth": 3}
    assert json.loads(values["COLLECTIONFLOW_PREVIOUS_OUTPUTS"]) == {"initialization": {"ok": True}}


def test_manual_input_is_passed_only_when_given() -> None:
    manual = phase_config("manual_collection")
    values = env(build_phase_job(request(manual, manual_input={"answers": [1, 2]})))
    assert json.loads(values["COLLECTIONFLOW_INPUT"]) == {"answers": [1, 2]}
    assert "COLLECTIONFLOW_INPUT" not in env(build_phase_job(request(manual)))


def test_fractional_heartbeat_interval() -> None:
    values = env(build_phase_job(request(heartbeat_seconds=0.5)))
    assert values["COLLECTIONFLOW_HEARTBEAT_SECONDS"] == "0.5"


def test_overrides_are_honoured() -> None:
    phase = phase_config(
        "gap_analysis",
        image="example.com/custom:2",
        command=["python", "-m", "custom"],
        args=["--fast"],
        env=[{"name": "EXTRA", "value": "1"}, {"name": "OTHER", "value": "x"}],
    )
    job = build_phase_job(request(phase))
    worker = container(job)
    assert worker["image"] == "example.com/custom:2"
    assert worker["command"] == ["python", "-m", "custom"]
    assert worker["args"] == ["--fast"]
    names = [e["name"] for e in worker["env"]]
    assert names[-2:] == ["EXTRA", "OTHER"]
    assert env(job)["EXTRA"] == "1"
    assert env(job)["COLLECTIONFLOW_PHASE"] == "gap_analysis"


def test_worker_rbac() -> None:
    account, role, binding = build_worker_rbac("team-a", "collectionflow-worker")
    assert [o["kind"] for o in (account, role, binding)] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ]
    for manifest in (account, role, binding):
        assert manifest["metadata"]["name"] == "collectionflow-worker"
        assert manifest["metadata"]["namespace"] == "team-a"
        assert manifest["metadata"]["labels"] == {
            "app.kubernetes.io/managed-by": "collectionflow-operator"
        }
    assert role["rules"] == WORKER_RULES
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "patch"),
    }
    assert {resource for _, resource, _ in granted} == {"leases"}
    assert not any(verb in {"delete", "*"} or res == "*" for _, res, verb in granted)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "collectionflow-worker",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "collectionflow-worker", "namespace": "team-a"}
    ]


def test_worker_rbac_binds_a_given_cluster_role_and_makes_no_role() -> None:
    account, binding = build_worker_rbac("team-a", "collectionflow-worker", "cf-worker", "u-1")

    owner = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "name": "cf-worker",
        "uid": "u-1",
    }
    assert account["metadata"]["ownerReferences"] == [owner], "they go with the chart's role"
    assert binding["metadata"]["ownerReferences"] == [owner]

    assert account["kind"] == "ServiceAccount"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cf-worker",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "collectionflow-worker", "namespace": "team-a"}
    ]


def test_values_from_a_config_map_or_a_phase_secret_and_a_node_selector() -> None:
    phase = phase_config(
        "gap_analysis",
        env=[
            {"name": "PLAIN", "value": "1"},
            {
                "name": "TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "collectionflow-phase-a", "key": "t"}},
            },
            {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "region"}}},
        ],
    )
    assert not phase.built_in, "a value from the cluster is a Job's, never the operator's"
    job = build_phase_job(request(phase, node_selector={"disk": "ssd"}))
    by_name = {e["name"]: e for e in container(job)["env"]}
    assert by_name["PLAIN"] == {"name": "PLAIN", "value": "1"}
    assert by_name["TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "collectionflow-phase-a", "key": "t"}
    }
    assert by_name["REGION"]["valueFrom"]["configMapKeyRef"]["key"] == "region"
    assert pod_spec(job)["nodeSelector"] == {"disk": "ssd"}
    assert "nodeSelector" not in pod_spec(build_phase_job(request(phase_config())))


@pytest.mark.parametrize(
    ("var", "problem"),
    [
        ({"name": "T", "valueFrom": {"secretKeyRef": {"name": "db-admin", "key": "p"}}}, "pattern"),
        ({"name": "T", "valueFrom": {}}, "exactly one of configMapKeyRef and secretKeyRef"),
        (
            {
                "name": "T",
                "value": "x",
                "valueFrom": {"configMapKeyRef": {"name": "a", "key": "b"}},
            },
            "value and valueFrom are exclusive",
        ),
    ],
)
def test_a_phase_may_read_no_secret_but_its_own_and_one_source_per_variable(
    var: dict[str, Any], problem: str
) -> None:
    spec = {"phases": [{"name": "gap_analysis", "env": [var]}]}
    with pytest.raises(ValueError, match=problem):
        CollectionFlowSpec.model_validate(spec)


def test_an_event_names_its_object_and_is_cut_to_what_the_api_keeps() -> None:
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    event = event_manifest(
        "team-a",
        "demo",
        UID,
        "CollectionFlow",
        "flows.collectionflow.io/v1alpha1",
        "Warning",
        EventReason.FLOW_STALLED,
        "x" * 5000,
        "collectionflow-operator",
        now,
    )
    assert event["metadata"]["name"].startswith("demo.")
    assert event["involvedObject"]["uid"] == UID
    assert (event["type"], event["reason"]) == ("Warning", "FlowStalled")
    assert len(event["message"]) == 1024
    assert event["firstTimestamp"] == "2024-05-01T12:00:00Z"
