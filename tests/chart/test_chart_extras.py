"""What the chart offers beside the operator: user roles, the web view's isolation, adaptable
pods, the `helm test` hook and the notes."""

from __future__ import annotations

import pytest
import yaml

from chart.test_chart import NAMESPACED, POSTGRES, is_hook
from collectionflow.api.models import CollectionFlowSpec
from harness.chart import find, notes, one, render, rules

pytestmark = pytest.mark.chart


def test_helm_test_runs_a_flow_where_the_operator_watches() -> None:
    for values, where in (({}, "cf-system"), (NAMESPACED, "team-a")):
        hooks = [o for o in render(values) if is_hook(o)]
        pod = one(hooks, "Pod")
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["NAMESPACE"] == where
        role = one(hooks, "Role")
        assert role["metadata"]["namespace"] == where
        assert role["rules"] == [
            {
                "apiGroups": ["flows.collectionflow.io"],
                "resources": ["collectionflows"],
                "verbs": ["create", "get", "delete"],
            }
        ]


def test_the_web_view_is_off_by_default_and_reads_only() -> None:
    assert find(render(POSTGRES), "Deployment", "cf-collectionflow-operator-ui") == []
    objects = render({**POSTGRES, "ui": {"enabled": True, "allowedHosts": ["flows.example"]}})
    view = find(objects, "Deployment", "cf-collectionflow-operator-ui")[0]
    operator = find(objects, "Deployment", "cf-collectionflow-operator")[0]
    view_labels = view["spec"]["template"]["metadata"]["labels"]
    selector = operator["spec"]["selector"]["matchLabels"]
    assert not all(view_labels.get(k) == v for k, v in selector.items()), "selectors overlap"
    pod = view["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "cf-collectionflow-operator-ui"
    args = pod["containers"][0]["args"]
    assert args[:4] == ["ui", "--host=0.0.0.0", "--allow-remote", "--port=8000"]
    assert "--allow-host=cf-collectionflow-operator-ui.cf-system.svc" in args
    assert "--allow-host=flows.example" in args
    assert find(objects, "Ingress") == []
    service = find(objects, "Service", "cf-collectionflow-operator-ui")[0]
    assert service["spec"]["selector"] == view["spec"]["selector"]["matchLabels"]
    role = find(objects, "ClusterRole", "cf-collectionflow-operator-ui")[0]
    assert set(rules(role)) == {
        (group, resource, verb)
        for group, resource in (("flows.collectionflow.io", "collectionflows"), ("", "events"))
        for verb in ("get", "list", "watch")
    }


def test_user_roles_aggregate_to_view_edit_and_admin_and_can_be_turned_off() -> None:
    roles = {r["metadata"]["name"]: r for r in find(render(), "ClusterRole")}
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    expected = {
        "cf-collectionflow-operator-view": {"view", "edit", "admin"},
        "cf-collectionflow-operator-edit": {"edit", "admin"},
        "cf-collectionflow-operator-admin": {"admin"},
    }
    for name, to in expected.items():
        labels = roles[name]["metadata"]["labels"]
        assert {k.removeprefix(aggregate) for k in labels if k.startswith(aggregate)} == to
    edit = roles["cf-collectionflow-operator-edit"]["rules"]
    assert all("collectionflows/status" not in rule["resources"] for rule in edit)
    off = {
        r["metadata"]["name"] for r in find(render({"userRoles": {"create": False}}), "ClusterRole")
    }
    assert not off & set(expected)


def test_the_pods_can_be_adapted_and_the_uid_left_to_the_platform() -> None:
    sidecar = {"name": "proxy", "image": "registry.example/proxy:1"}
    volume = {"name": "ca", "configMap": {"name": "db-ca"}}
    mount = {"name": "ca", "mountPath": "/etc/db-ca", "readOnly": True}
    objects = render(
        {
            "extraArgs": ["--verbose"],
            "extraVolumes": [volume],
            "extraVolumeMounts": [mount],
            "extraContainers": [sidecar],
            "commonLabels": {"team": "migrations"},
            "podSecurityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None},
            "ui": {"enabled": True, "nodeSelector": {"pool": "web"}},
        }
    )
    operator_deployment = find(objects, "Deployment", "cf-collectionflow-operator")[0]
    pod = operator_deployment["spec"]["template"]["spec"]
    operator, extra = pod["containers"]
    assert operator["args"][-1] == "--verbose"
    assert extra == sidecar
    assert volume in pod["volumes"]
    assert mount in operator["volumeMounts"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert operator["securityContext"]["readOnlyRootFilesystem"] is True
    assert all(
        o["metadata"]["labels"]["team"] == "migrations"
        for o in objects
        if o["kind"] != "CustomResourceDefinition"
    )
    view = find(objects, "Deployment", "cf-collectionflow-operator-ui")[0]
    assert view["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "web"}


def test_the_web_view_denies_all_ingress_unless_a_proxy_is_named() -> None:
    objects = render({"ui": {"enabled": True}})
    policy = one(objects, "NetworkPolicy")
    view = find(objects, "Deployment", "cf-collectionflow-operator-ui")[0]
    assert policy["spec"]["podSelector"]["matchLabels"] == view["spec"]["selector"]["matchLabels"]
    assert (policy["spec"]["policyTypes"], policy["spec"]["ingress"]) == (["Ingress"], [])
    proxy = [{"podSelector": {"matchLabels": {"app": "oauth2-proxy"}}}]
    opened = one(
        render({"ui": {"enabled": True, "networkPolicy": {"ingressFrom": proxy}}}), "NetworkPolicy"
    )
    assert opened["spec"]["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}], "from": proxy}
    ]


def test_the_notes_carry_a_flow_the_crd_accepts_and_how_to_answer_it() -> None:
    text = notes()
    inline = text.split("<<'YAML'\n", 1)[1].split("\n  YAML\n", 1)[0]
    flow = yaml.safe_load("\n".join(line.removeprefix("  ") for line in inline.splitlines()))
    assert flow["kind"] == "CollectionFlow"
    CollectionFlowSpec.model_validate(flow["spec"])
    assert "flows.collectionflow.io/input='{\"answers\": {}}'" in text
    assert "helm test cf" in text
    assert "crds/samples" not in text, "the chart carries no samples"


def test_the_web_view_reads_only_the_watched_namespaces_with_a_read_only_role() -> None:
    values = {
        **POSTGRES,
        **NAMESPACED,
        "ui": {"enabled": True, "database": {"existingSecret": "cf-db-readonly"}},
    }
    objects = render(values)
    name = "cf-collectionflow-operator-ui"
    assert find(objects, "ClusterRole", name) == []
    assert find(objects, "ClusterRoleBinding", name) == []
    roles = find(objects, "Role", name)
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    assert {v for r in roles for rule in r["rules"] for v in rule["verbs"]} == {
        "get",
        "list",
        "watch",
    }
    view = find(objects, "Deployment", name)[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--namespace=team-a" in view["args"]
    assert "--namespace=team-b" in view["args"]
    [url] = view["env"]
    assert url["valueFrom"]["secretKeyRef"]["name"] == "cf-db-readonly"
