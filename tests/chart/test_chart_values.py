"""The chart's values: each bad one refused at install naming its key, long release names
kept within Kubernetes' limits, and every value documented in values.yaml and the README."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import helm_python as helm
import pytest
import yaml

from chart.test_chart import POSTGRES
from harness.chart import CHART, REPO, render

pytestmark = pytest.mark.chart


def test_more_than_one_replica_on_sqlite_is_refused() -> None:
    with pytest.raises(helm.HelmError, match="replicaCount"):
        render({"replicaCount": 2})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"imagee": {"tag": "x"}}, "imagee"),
        ({"operator": {"stallTimeoutSecond": 5}}, "stallTimeoutSecond"),
        ({"operator": {"stallTimeoutSeconds": "soon"}}, "stallTimeoutSeconds"),
        ({"watchNamespaces": "team-a"}, "watchNamespaces"),
        ({"healthPort": 70000}, "healthPort"),
        ({"operator": {"jobTTLSeconds": 30}}, "jobTTLSeconds"),
        ({"resources": {"requests": {"cpu": "100 m"}}}, "/resources/requests/cpu"),
        ({"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
        ({"ui": {"resources": {"limits": {"cpu": "-1"}}}}, "/ui/resources/limits/cpu"),
        ({"tolerations": [{"key": "a", "operater": "Exists"}]}, "operater"),
        ({"tolerations": [{"key": "a", "effect": "NoScheduling"}]}, "/tolerations/0/effect"),
        ({"affinity": {"nodeAfinity": {}}}, "nodeAfinity"),
        ({"topologySpreadConstraints": [{"maxSkew": 1}]}, "topologyKey"),
        ({"extraEnv": [{"name": "A", "vaule": "1"}]}, "vaule"),
        ({"priorityClassName": "High Priority"}, "priorityClassName"),
        ({"database": {"existingSecret": "My_Secret"}}, "/database/existingSecret"),
        ({"persistence": {"enabled": True, "existingClaim": "Claim!"}}, "existingClaim"),
        ({"image": {"repository": "Registry.example/CollectionFlow"}}, "/image/repository"),
        (
            {"leaderElection": {"leaseDurationSeconds": 10, "renewDeadlineSeconds": 10}},
            "leaderElection.renewDeadlineSeconds (10) must be less than",
        ),
        (
            {"leaderElection": {"renewDeadlineSeconds": 2, "retryPeriodSeconds": 2}},
            "leaderElection.retryPeriodSeconds (2) must be less than",
        ),
        (
            {**POSTGRES, "podDisruptionBudget": {"minAvailable": 2}},
            "podDisruptionBudget.minAvailable",
        ),
        ({"persistence": {"existingClaim": "data"}}, "persistence.existingClaim is set but"),
        (
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "needs metrics.enabled",
        ),
        ({"serviceAccount": {"create": False}}, "serviceAccount.create is false"),
        (
            {"extraEnv": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
            "extraEnv names A twice",
        ),
        (
            {
                "serviceAccount": {"name": "collectionflow-worker"},
                "watchNamespaces": ["cf-system"],
            },
            "give the operator and its phases different ServiceAccounts",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        render(values)


def test_both_monitors_on_is_refused_with_a_clear_message() -> None:
    values = {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}
    with pytest.raises(helm.HelmError, match="enable one of them"):
        render(values)


def test_every_value_is_documented() -> None:
    """Each leaf key has a comment above it, or sits in a block whose key has one."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    documented_blocks: list[tuple[int, bool]] = []  # (indent, documented) of open parents
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z]+):\s*(\S.*)?$", line)
        if not match:
            continue
        indent = len(match.group(1))
        while documented_blocks and documented_blocks[-1][0] >= indent:
            documented_blocks.pop()
        commented = index > 0 and lines[index - 1].strip().startswith("#")
        inherited = any(documented for _, documented in documented_blocks)
        if match.group(3) is None:
            documented_blocks.append((indent, commented or inherited))
        elif not (commented or inherited):
            undocumented.append(match.group(2))
    assert undocumented == []


@pytest.mark.parametrize("length", [32, 39, 53])
def test_long_release_names_make_names_of_at_most_63_and_never_the_same(length: int) -> None:
    release = ("r" * length)[:length]
    chart = helm.Chart.load(CHART)
    rendered = chart.render({}, name=release, namespace="cf-system", is_install=True)
    objects = [
        document
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for document in yaml.safe_load_all(text)
        if document
    ]
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert all(len(name) <= 63 for _, name in names), names
    assert len(set(names)) == len(names), "two objects of one kind share a name"
    cluster_roles = [name for kind, name in names if kind == "ClusterRole"]
    assert len(set(cluster_roles)) == len(cluster_roles) >= 2


def test_the_chart_readme_lists_every_value_as_values_yaml_says() -> None:
    checked = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chart_readme.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    readme = (CHART / "README.md").read_text()
    for key in ("`userRoles.create`", "`metrics.prometheusRule.enabled`", "`extraContainers`"):
        assert key in readme
