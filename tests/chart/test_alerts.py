"""The chart's alerts, run by Prometheus' own `promtool test rules` (Debian's `prometheus`
package): each fires on the series that should fire it, at the time it should, with its
summary and description, and only for the release's namespace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.chart import one, render

pytestmark = pytest.mark.chart

TESTS = Path(__file__).with_name("alerts_test.yaml")


def test_the_rules_pass_promtools_checks_and_unit_tests(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/install-system-deps.sh installs prometheus"
    rule = one(render({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule")
    rules = tmp_path / "alerts.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    shutil.copy(TESTS, tmp_path / TESTS.name)
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", TESTS.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    tested_alerts = {
        t["alertname"]
        for case in yaml.safe_load(TESTS.read_text())["tests"]
        for t in case["alert_rule_test"]
    }
    assert tested_alerts == set(alerts), "every alert has a promtool test"


def test_the_alerts_are_off_by_default_and_documented() -> None:
    assert [o for o in render() if o["kind"] == "PrometheusRule"] == []
    rule = one(render({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule")
    runbook = (Path(__file__).parents[2] / "docs" / "alerts.md").read_text()
    for alert in rule["spec"]["groups"][0]["rules"]:
        assert f"## {alert['alert'].lower()}" in runbook, alert["alert"]
        assert 'namespace="cf-system"' in alert["expr"], alert["expr"]
