"""The Helm chart, rendered and installed through helm-python-sdk (Helm v4's Go SDK, no helm
binary), and the restricted Pod Security Standard checked on what it renders."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "collectionflow-operator"

Manifest = dict[str, Any]


def render(values: Mapping[str, Any] | None = None, namespace: str = "cf-system") -> list[Manifest]:
    """Every object the chart renders for ``values`` (release ``cf``)."""
    chart = helm.Chart.load(CHART)
    rendered = chart.render(dict(values or {}), name="cf", namespace=namespace, is_install=True)
    return [
        document
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document
    ]


def notes(values: Mapping[str, Any] | None = None) -> str:
    chart = helm.Chart.load(CHART)
    rendered = chart.render(dict(values or {}), name="cf", namespace="cf-system", is_install=True)
    return rendered["collectionflow-operator/templates/NOTES.txt"]


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def rules(role: Manifest) -> Iterator[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every permission a Role or ClusterRole grants."""
    for rule in role.get("rules") or []:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    yield group, resource, verb


# --------------------------------------------------------------------------------------------
# The restricted Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-
# standards), for clusters like 1.20 that have no PodSecurity admission to check it.

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod_spec: Manifest) -> list[str]:
    """What in a pod spec breaks the restricted profile; empty when it passes."""
    problems: list[str] = []
    pod_context = pod_spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field):
            problems.append(f"{field} is true")
    for volume in pod_spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume['name']} is of type {sorted(kinds)}")
    if (pod_context.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("pod seccompProfile is not RuntimeDefault or Localhost")
    if pod_context.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    containers = [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    for container in containers:
        name = container["name"]
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            problems.append(f"container {name} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name} does not set allowPrivilegeEscalation: false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"container {name} does not drop ALL capabilities")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"container {name} adds capabilities")
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"container {name} may run as root (runAsNonRoot unset)")
        if context.get("runAsUser") == 0:
            problems.append(f"container {name} runAsUser is 0")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"container {name} uses hostPort {port['hostPort']}")
    return problems
