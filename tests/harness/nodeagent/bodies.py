"""The bodies of the local node agent's writes: Binding, node status, node Lease,
TokenRequest and the Unschedulable condition. Pure; the agent sends them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from harness.nodeagent.model import JsonDict
from harness.nodeagent.status import timestamp

NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_SECONDS = 40
TOKEN_SECONDS = 86400


def micro_timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds, as metav1.MicroTime serialises."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def binding(namespace: str, name: str, uid: str, node_name: str) -> JsonDict:
    """The Binding that schedules a pod onto the node."""
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node_name},
    }


def unschedulable_status(message: str, now: dt.datetime) -> JsonDict:
    """The pod status that says the pod fits no node."""
    return {
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": None,
                "lastTransitionTime": timestamp(now),
            }
        ]
    }


def node_status(
    ready: bool,
    capacity: Mapping[str, str],
    node_ip: str,
    node_name: str,
    version: str,
    arch: str,
    kernel: str,
    now: dt.datetime,
    ready_since: dt.datetime,
    kubelet_port: int = 0,
) -> JsonDict:
    """The Node's status as a kubelet posts it: capacity, conditions, addresses, info."""
    beat, since = timestamp(now), timestamp(ready_since)

    def condition(kind: str, status: str, reason: str, message: str) -> JsonDict:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": beat,
            "lastTransitionTime": since,
        }

    return {
        "capacity": dict(capacity),
        "allocatable": dict(capacity),
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
            condition(
                "Ready",
                "True" if ready else "False",
                "KubeletReady" if ready else "NodeAgentStopped",
                "local node agent is posting ready status" if ready else "local node agent stopped",
            ),
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "addresses": [
            {"type": "InternalIP", "address": node_ip},
            {"type": "Hostname", "address": node_name},
        ],
        "nodeInfo": {
            "machineID": node_name,
            "systemUUID": node_name,
            "bootID": node_name,
            "kernelVersion": kernel,
            "osImage": "local node agent (processes)",
            "containerRuntimeVersion": "nodeagent://1",
            "kubeletVersion": version,
            "kubeProxyVersion": version,
            "operatingSystem": "linux",
            "architecture": arch,
        },
    }


def node_lease_spec(node_name: str, now: dt.datetime) -> JsonDict:
    return {
        "holderIdentity": node_name,
        "leaseDurationSeconds": NODE_LEASE_SECONDS,
        "renewTime": micro_timestamp(now),
    }


def node_lease(node_name: str, node_uid: str, now: dt.datetime) -> JsonDict:
    """The node's Lease in kube-node-lease, owned by its Node."""
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node_name,
            "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}
            ],
        },
        "spec": node_lease_spec(node_name, now),
    }


def token_request(pod_name: str, pod_uid: str) -> JsonDict:
    """A TokenRequest for a pod's ServiceAccount, bound to the pod."""
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "expirationSeconds": TOKEN_SECONDS,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod_uid},
        },
    }
