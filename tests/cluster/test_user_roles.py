"""The chart's user roles on the real apiserver (RBAC on, the controller manager aggregating):
a namespace's `edit` user creates a flow and gives it input, a `view` user reads it and may not
write; without the chart's roles neither may even read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from collectionflow.api.models import GROUP, PLURAL, VERSION
from collectionflow.api.names import ANNOTATION_INPUT
from harness.chart import find, render
from harness.cluster import Cluster
from harness.crd import install_crd
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster


def flows_as(cluster: Cluster, user: str) -> client.CustomObjectsApi:
    """The flows API, impersonating `user` (the admin's kubeconfig may impersonate)."""
    api = cluster.api_client()
    api.set_default_header("Impersonate-User", user)
    return client.CustomObjectsApi(api)


def status_of(call: Any) -> int:
    try:
        call()
    except client.ApiException as error:
        return int(error.status)
    return 200


def bind(api: client.ApiClient, namespace: str, user: str, cluster_role: str) -> None:
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"{user}-{cluster_role}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": cluster_role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


def flow(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "CollectionFlow",
        "metadata": {"name": name},
        "spec": {"clientAccountId": "roles", "suspend": True},
    }


@pytest.fixture
def user_roles(api: client.ApiClient) -> Iterator[list[str]]:
    """The chart's user ClusterRoles, under a release name of the test's own, removed after."""
    release = f"roles-{uuid.uuid4().hex[:6]}"
    roles = find(render({"fullnameOverride": release}), "ClusterRole")
    mine = [role for role in roles if role["metadata"]["name"].startswith(f"{release}-")]
    mine = [
        role
        for role in mine
        if role["metadata"]["name"].rsplit("-", 1)[1] in ("view", "edit", "admin")
    ]
    rbac = client.RbacAuthorizationV1Api(api)
    for role in mine:
        rbac.create_cluster_role(role)
    try:
        yield [role["metadata"]["name"] for role in mine]
    finally:
        for role in mine:
            rbac.delete_cluster_role(role["metadata"]["name"])


def test_without_the_user_roles_an_editor_cannot_touch_flows(
    cluster: Cluster, api: client.ApiClient, namespace: str
) -> None:
    install_crd(api)
    bind(api, namespace, "eve", "edit")
    eve = flows_as(cluster, "eve")
    created = status_of(
        lambda: eve.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, flow("x"))
    )
    assert created == 403


def test_an_editor_creates_and_answers_a_flow_and_a_viewer_only_reads(
    cluster: Cluster, api: client.ApiClient, namespace: str, user_roles: list[str]
) -> None:
    install_crd(api)
    assert len(user_roles) == 3, user_roles
    bind(api, namespace, "alice", "edit")
    bind(api, namespace, "bob", "view")
    alice, bob = flows_as(cluster, "alice"), flows_as(cluster, "bob")

    def create() -> int:
        return status_of(
            lambda: alice.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, flow("by-alice")
            )
        )

    wait_for(
        lambda: create() in (200, 201, 409), "edit to aggregate the chart's edit role", 30, 0.5
    )
    answer = {"metadata": {"annotations": {ANNOTATION_INPUT: '{"answers": {}}'}}}
    assert (
        status_of(
            lambda: alice.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "by-alice", answer
            )
        )
        == 200
    )
    status_patch = {"status": {"state": "Succeeded"}}
    assert (
        status_of(
            lambda: alice.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, "by-alice", status_patch
            )
        )
        == 403
    ), "the status is the operator's"

    wait_for(
        lambda: (
            status_of(
                lambda: bob.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, "by-alice"
                )
            )
            == 200
        ),
        "view to aggregate the chart's view role",
        30,
        0.5,
    )
    assert (
        status_of(lambda: bob.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL))
        == 200
    )
    assert (
        status_of(
            lambda: bob.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, flow("by-bob")
            )
        )
        == 403
    )
    assert (
        status_of(
            lambda: bob.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "by-alice", answer
            )
        )
        == 403
    )
    assert (
        status_of(
            lambda: bob.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "by-alice"
            )
        )
        == 403
    )
