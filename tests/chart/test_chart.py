"""The Helm chart, linted and rendered offline with several values files, and checked on the
objects it renders: the CRD, RBAC, the operator's pod and its settings."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest
import yaml

from collectionflow.settings import LeaderSettings, OperatorSettings, Settings
from collectionflow.specs.rbac import WORKER_RULES
from harness.chart import CHART, REPO, find, notes, one, render, restricted_violations, rules

pytestmark = pytest.mark.chart

POSTGRES = {"database": {"existingSecret": "cf-db", "secretKey": "url"}}
NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}
MONITORED = {"metrics": {"serviceMonitor": {"enabled": True}}, "networkPolicy": {"enabled": True}}
VALUES_FILES = {"default": {}, "namespaced": NAMESPACED, "postgres": POSTGRES, "metrics": MONITORED}


def is_hook(manifest: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (manifest["metadata"].get("annotations") or {})


def deployment_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def operator_env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container = deployment_pod(objects)["containers"][0]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


@pytest.mark.parametrize("values", VALUES_FILES.values(), ids=VALUES_FILES.keys())
def test_lint_strict_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, kube_version="v1.20.2")

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_charts_crd_is_the_one_in_crds() -> None:
    source = REPO / "crds" / "collectionflow.yaml"
    copy = CHART / "files" / "collectionflow.yaml"
    assert copy.read_text() == source.read_text(), f"{copy} differs from {source}: run make crd"

    crd = one(render(), "CustomResourceDefinition")
    metadata = crd.pop("metadata")
    expected = yaml.safe_load(source.read_text())
    assert metadata["name"] == expected.pop("metadata")["name"]
    assert crd == expected
    assert metadata["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_crds_can_be_left_out_or_deleted_with_the_release() -> None:
    assert find(render({"crds": {"install": False}}), "CustomResourceDefinition") == []
    crd = one(render({"crds": {"keep": False}}), "CustomResourceDefinition")
    assert "annotations" not in crd["metadata"]


@pytest.mark.parametrize("values", VALUES_FILES.values(), ids=VALUES_FILES.keys())
def test_the_operator_pod_passes_the_restricted_pod_security_standard(
    values: dict[str, Any],
) -> None:
    pod = deployment_pod(render(values))

    assert restricted_violations(pod) == []
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["resources"]["limits"]["memory"] == "512Mi"


def test_the_pod_security_check_finds_what_breaks_the_profile() -> None:
    pod = {
        "hostNetwork": True,
        "securityContext": {},
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        "containers": [
            {
                "name": "c",
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
    }

    problems = restricted_violations(pod)

    assert len(problems) == 9, problems


def test_cluster_wide_rbac_is_least_privilege() -> None:
    objects = render()
    operator = one(objects, "ClusterRole", "cf-collectionflow-operator")
    granted = set(rules(operator))

    # Exactly these, each for the reason docs/design.md's RBAC table gives (a rule added to
    # the chart fails here until it is reasoned there and listed here).
    assert granted == {
        ("", "events", "create"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "serviceaccounts", "create"),
        ("batch", "jobs", "create"),
        ("batch", "jobs", "delete"),
        ("batch", "jobs", "get"),
        ("batch", "jobs", "list"),
        ("batch", "jobs", "watch"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "list"),
        ("coordination.k8s.io", "leases", "watch"),
        ("flows.collectionflow.io", "collectionflows", "get"),
        ("flows.collectionflow.io", "collectionflows", "list"),
        ("flows.collectionflow.io", "collectionflows", "patch"),
        ("flows.collectionflow.io", "collectionflows", "watch"),
        ("flows.collectionflow.io", "collectionflows/status", "patch"),
        ("rbac.authorization.k8s.io", "clusterroles", "bind"),
        ("rbac.authorization.k8s.io", "clusterroles", "get"),
        ("rbac.authorization.k8s.io", "rolebindings", "create"),
    }
    assert not any("*" in (group, resource, verb) for group, resource, verb in granted)
    assert not any(resource == "secrets" for _, resource, _ in granted)
    assert ("batch", "jobs", "create") in granted
    assert ("flows.collectionflow.io", "collectionflows/status", "patch") in granted
    assert ("flows.collectionflow.io", "collectionflows/status", "update") not in granted
    # Leases: read cluster-wide (heartbeats); written only in the release's namespace.
    assert {verb for group, resource, verb in granted if resource == "leases"} == {
        "get",
        "list",
        "watch",
    }
    assert ("rbac.authorization.k8s.io", "roles", "create") not in granted
    bind = [r for r in operator["rules"] if "bind" in r["verbs"]]
    assert bind == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind", "get"],
            "resourceNames": ["cf-collectionflow-operator-worker"],
        }
    ]
    worker = one(objects, "ClusterRole", "cf-collectionflow-operator-worker")
    assert worker["rules"] == WORKER_RULES
    binding = one(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "cf-collectionflow-operator", "namespace": "cf-system"}
    ]
    env = operator_env(objects)
    assert (
        env["COLLECTIONFLOW_OPERATOR__WORKER_CLUSTER_ROLE"] == "cf-collectionflow-operator-worker"
    )
    assert "--namespace" not in " ".join(deployment_pod(objects)["containers"][0]["args"])


def test_namespaced_rbac_stays_in_the_watched_namespaces() -> None:
    objects = [o for o in render(NAMESPACED) if not is_hook(o)]

    leader = "cf-collectionflow-operator-leader"
    for role in find(objects, "Role") + find(objects, "RoleBinding"):
        expected = ("cf-system",) if role["metadata"]["name"] == leader else ("team-a", "team-b")
        assert role["metadata"]["namespace"] in expected
    assert len(find(objects, "Role")) == 5
    accounts = {
        (a["metadata"]["namespace"], a["metadata"]["name"]) for a in find(objects, "ServiceAccount")
    }
    assert accounts == {
        ("cf-system", "cf-collectionflow-operator"),
        ("team-a", "collectionflow-worker"),
        ("team-b", "collectionflow-worker"),
    }
    user_roles = {f"cf-collectionflow-operator-{r}" for r in ("view", "edit", "admin")}
    cluster_roles = {role["metadata"]["name"] for role in find(objects, "ClusterRole")}
    assert cluster_roles == user_roles, "the operator holds nothing cluster-wide"
    assert find(objects, "ClusterRoleBinding") == [], "the user roles grant only when aggregated"
    worker_roles = find(objects, "Role", "cf-collectionflow-operator-worker")
    assert [role["rules"] for role in worker_roles] == [WORKER_RULES, WORKER_RULES]
    args = deployment_pod(objects)["containers"][0]["args"]
    assert args == ["run", "--liveness-port=8080", "--namespace=team-a", "--namespace=team-b"]
    assert operator_env(objects)["COLLECTIONFLOW_OPERATOR__MANAGE_WORKER_RBAC"] == "false"


def test_one_replica_on_sqlite_two_on_postgresql_with_a_budget_and_rolling_updates() -> None:
    sqlite, postgres = render({}), render(POSTGRES)
    single = one(sqlite, "Deployment")["spec"]
    assert (single["replicas"], single["strategy"]) == (1, {"type": "Recreate"})
    assert find(sqlite, "PodDisruptionBudget") == []
    assert "topologySpreadConstraints" not in deployment_pod(sqlite)

    ha = one(postgres, "Deployment")["spec"]
    assert ha["replicas"] == 2
    assert ha["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pdb = one(postgres, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1", "offline (helm template) renders what 1.25+ serves"
    budget = pdb["spec"]
    assert budget["minAvailable"] == 1
    assert budget["selector"] == ha["selector"]
    [spread] = deployment_pod(postgres)["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["whenUnsatisfiable"]) == (
        "kubernetes.io/hostname",
        "ScheduleAnyway",
    )
    one_on_postgres = render({**POSTGRES, "replicaCount": 1})
    assert one(one_on_postgres, "Deployment")["spec"]["replicas"] == 1
    assert find(one_on_postgres, "PodDisruptionBudget") == []


def test_every_replica_takes_part_in_the_election_with_least_privilege() -> None:
    objects = render({**POSTGRES, "leaderElection": {"leaseDurationSeconds": 20}})
    env = operator_env(objects)
    assert env["COLLECTIONFLOW_LEADER__ENABLED"] == "true"
    assert env["COLLECTIONFLOW_LEADER__LEASE_DURATION_SECONDS"] == "20"
    assert env["COLLECTIONFLOW_LEADER__IDENTITY"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["COLLECTIONFLOW_LEADER__LEASE_NAMESPACE"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    role = find(objects, "Role", "cf-collectionflow-operator-leader")[0]
    assert role["metadata"]["namespace"] == "cf-system"
    assert set(rules(role)) == {
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "update"),
        ("", "events", "create"),
    }
    fields = set(LeaderSettings.model_fields)
    for name in env:
        if name.startswith("COLLECTIONFLOW_LEADER__"):
            assert name.removeprefix("COLLECTIONFLOW_LEADER__").lower() in fields, name


def test_database_from_an_existing_secret_or_sqlite_on_a_volume() -> None:
    postgres = render(POSTGRES)
    assert operator_env(postgres)["COLLECTIONFLOW_DB__URL"] == {
        "secretKeyRef": {"name": "cf-db", "key": "url"}
    }
    assert [v["name"] for v in deployment_pod(postgres)["volumes"]] == ["tmp"]

    sqlite = render()
    assert operator_env(sqlite)["COLLECTIONFLOW_DB__URL"] == (
        "sqlite+aiosqlite:////data/collectionflow.sqlite"
    )
    data = [v for v in deployment_pod(sqlite)["volumes"] if v["name"] == "data"]
    assert data == [{"name": "data", "emptyDir": {}}]
    assert "LOST" in notes()

    persistent = render({"persistence": {"enabled": True, "size": "5Gi"}})
    claim = one(persistent, "PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    volume = next(v for v in deployment_pod(persistent)["volumes"] if v["name"] == "data")
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_operator_settings_come_from_values_and_name_real_settings() -> None:
    objects = render(
        {
            "operator": {"stallTimeoutSeconds": 120, "maxRecoveries": 5},
            "image": {"repository": "ghcr.io/acme/cf", "tag": "1.2.3"},
            "extraEnv": [{"name": "COLLECTIONFLOW_OPERATOR__INPUT_REMINDER_SECONDS", "value": "9"}],
        }
    )
    env = operator_env(objects)

    assert env["COLLECTIONFLOW_OPERATOR__STALL_TIMEOUT_SECONDS"] == "120"
    assert env["COLLECTIONFLOW_OPERATOR__MAX_RECOVERIES"] == "5"
    assert env["COLLECTIONFLOW_OPERATOR__IMAGE"] == "ghcr.io/acme/cf:1.2.3"
    assert env["COLLECTIONFLOW_OPERATOR__INPUT_REMINDER_SECONDS"] == "9"
    assert deployment_pod(objects)["containers"][0]["image"] == "ghcr.io/acme/cf:1.2.3"
    fields = set(OperatorSettings.model_fields)
    for name in env:
        if name.startswith("COLLECTIONFLOW_OPERATOR__"):
            assert name.removeprefix("COLLECTIONFLOW_OPERATOR__").lower() in fields, name


@pytest.mark.parametrize(("ttl", "expected"), [(None, None), (3600, 3600)])
def test_the_job_ttl_reaches_the_operator_settings(
    ttl: int | None, expected: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = operator_env(render({"operator": {"jobTTLSeconds": ttl}}))
    name = "COLLECTIONFLOW_OPERATOR__JOB_TTL_SECONDS"
    monkeypatch.setenv(name, env[name])
    assert Settings().operator.job_ttl_seconds == expected


def test_a_digest_pins_the_image() -> None:
    digest = "sha256:" + "a" * 64
    pod = deployment_pod(render({"image": {"digest": digest}}))
    assert pod["containers"][0]["image"] == f"collectionflow-operator@{digest}"


def test_metrics_service_monitors_and_network_policy() -> None:
    objects = render(MONITORED)
    service = one(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s"}]
    assert find(objects, "PodMonitor") == []
    policy = one(objects, "NetworkPolicy")
    assert [rule["ports"] for rule in policy["spec"]["ingress"]] == [
        [{"port": "health", "protocol": "TCP"}],
        [{"port": "metrics", "protocol": "TCP"}],
    ]
    disabled = render({"metrics": {"enabled": False}})
    assert find(disabled, "Service") == []
    assert operator_env(disabled)["COLLECTIONFLOW_OPERATOR__METRICS_PORT"] == "0"
