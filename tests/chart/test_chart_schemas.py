"""Every object the chart renders, for every values file the chart tests use (and each opt-in
part turned on), validated strictly against Kubernetes' own schemas (kubernetes-validate) of
the oldest version it bundles, two in between and the newest. Kubernetes 1.20 is validated by
its real apiserver: the install tests (tests/e2e/test_helm_install.py) run on 1.20.2."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from harness.chart import render

pytestmark = pytest.mark.chart

VERSIONS = ("1.25.0", "1.29.0", kubernetes_validate.latest_version())
POSTGRES = {"database": {"existingSecret": "cf-db", "secretKey": "url"}}
EVERYTHING = {
    **POSTGRES,
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    },
    "networkPolicy": {"enabled": True},
    "ui": {"enabled": True, "allowedHosts": ["flows.example"]},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}
    ],
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
}
VALUES = {
    "default": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "postgres": POSTGRES,
    "everything": EVERYTHING,
}
# Kinds of CRDs Kubernetes does not ship a schema for: the prometheus-operator's.
FOREIGN = {"monitoring.coreos.com/v1"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("values", VALUES.values(), ids=VALUES.keys())
def test_every_rendered_object_is_valid_for_the_version(
    values: dict[str, Any], version: str
) -> None:
    objects = [o for o in render(values) if o["apiVersion"] not in FOREIGN]
    assert objects
    problems = []
    for manifest in objects:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{manifest['kind']}/{manifest['metadata']['name']}: {error.message}")
    assert problems == []
