"""The bodies of the local node agent's writes: Binding, node status, node Lease, TokenRequest."""

from __future__ import annotations

import datetime as dt

import pytest

from harness.nodeagent.bodies import (
    NODE_LEASE_NAMESPACE,
    binding,
    node_lease,
    node_status,
    token_request,
    unschedulable_status,
)
from harness.nodeagent.model import JsonDict
from harness.nodeagent.status import grace_period

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
SINCE = dt.datetime(2026, 1, 2, 3, 0, 0, tzinfo=dt.UTC)


def test_a_binding_targets_the_node_and_names_the_pod_by_uid() -> None:
    body = binding("team-a", "web-0", "uid-1", "node-a")
    assert body["metadata"] == {"name": "web-0", "namespace": "team-a", "uid": "uid-1"}
    assert body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "node-a"}


@pytest.mark.parametrize(
    ("ready", "status", "reason"),
    [(True, "True", "KubeletReady"), (False, "False", "NodeAgentStopped")],
)
def test_node_status_says_ready_or_stopped(ready: bool, status: str, reason: str) -> None:
    body = node_status(
        ready, {"cpu": "8"}, "127.0.0.1", "node-a", "v1.20.2", "amd64", "6.1", NOW, SINCE
    )
    conditions = {c["type"]: c for c in body["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == (status, reason)
    assert conditions["Ready"]["lastHeartbeatTime"] == "2026-01-02T03:04:05Z"
    assert conditions["Ready"]["lastTransitionTime"] == "2026-01-02T03:00:00Z"
    assert body["allocatable"] == body["capacity"] == {"cpu": "8"}
    assert body["nodeInfo"]["kubeletVersion"] == "v1.20.2"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in body["addresses"]


def test_the_node_lease_is_owned_by_its_node_and_renewed_now() -> None:
    lease = node_lease("node-a", "node-uid", NOW)
    assert lease["metadata"]["namespace"] == NODE_LEASE_NAMESPACE
    [owner] = lease["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Node", "node-uid")
    assert lease["spec"]["renewTime"] == "2026-01-02T03:04:05.678901Z"
    assert lease["spec"]["holderIdentity"] == "node-a"


def test_a_token_request_is_bound_to_its_pod() -> None:
    body = token_request("web-0", "uid-1")
    assert body["kind"] == "TokenRequest"
    assert body["spec"]["boundObjectRef"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-0",
        "uid": "uid-1",
    }


def test_unschedulable_is_a_false_pod_scheduled_condition() -> None:
    [condition] = unschedulable_status("no node fits", NOW)["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    assert condition["message"] == "no node fits"


@pytest.mark.parametrize(
    ("pod", "seconds"),
    [
        ({}, 30.0),
        ({"spec": {"terminationGracePeriodSeconds": 5}}, 5.0),
        (
            {
                "metadata": {"deletionGracePeriodSeconds": 0},
                "spec": {"terminationGracePeriodSeconds": 5},
            },
            0.0,
        ),
    ],
)
def test_the_grace_period_is_the_deletions_then_the_pods(pod: JsonDict, seconds: float) -> None:
    assert grace_period(pod) == seconds
