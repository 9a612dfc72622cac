"""The chart's alerts and dashboard against a real Prometheus scraping the operator: a real
stalled flow fires CollectionFlowStalled, and every dashboard panel's query returns data."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.test_stall_recovery import FAST_CHECKS, spec
from harness.chart import one, render
from harness.flows import Flows
from harness.operator_process import OperatorProcess
from harness.prometheus import Prometheus
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

NAMESPACE_LABELS = {"namespace": "cf-system", "pod": "collectionflow-operator-0"}


def chart_alerts() -> list[dict[str, object]]:
    rule = one(render({"metrics": {"prometheusRule": {"enabled": True}}}), "PrometheusRule")
    groups: list[dict[str, object]] = rule["spec"]["groups"]
    return groups


def dashboard_queries() -> dict[str, str]:
    objects = render({"metrics": {"dashboard": {"enabled": True}}})
    board = json.loads(one(objects, "ConfigMap")["data"]["collectionflow-operator.json"])
    return {
        panel["title"]: target["expr"].replace("$namespace", ".*")
        for panel in board["panels"]
        for target in panel["targets"]
    }


@pytest.fixture
def prometheus(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str, tmp_path: Path
) -> Iterator[tuple[Prometheus, OperatorProcess]]:
    operator = start_operator(db_url, **FAST_CHECKS)
    target = f"127.0.0.1:{operator.metrics_port}"
    server = Prometheus(tmp_path / "prometheus", [(target, NAMESPACE_LABELS)], chart_alerts())
    server.start()
    try:
        yield server, operator
    finally:
        server.stop()


def test_a_real_stall_fires_the_alert_and_every_dashboard_panel_has_data(
    flows: Flows, prometheus: tuple[Prometheus, OperatorProcess]
) -> None:
    server, _ = prometheus
    flows.create(
        "hung",
        spec(10, platform_detection={"sleepSeconds": 1, "hangSeconds": 120, "hangAttempts": 1}),
    )
    flows.wait_state("hung", "Succeeded", timeout=150)
    wait_for(
        lambda: "CollectionFlowStalled" in server.firing(),
        "CollectionFlowStalled to fire",
        timeout=60,
        interval=1.0,
    )
    [stalled] = [
        a
        for a in server.api("alerts")["alerts"]
        if a["labels"]["alertname"] == "CollectionFlowStalled"
    ]
    assert stalled["labels"]["reason"] == "NoProgress"
    assert stalled["labels"]["namespace"] == "cf-system"
    assert "NoProgress" in stalled["annotations"]["summary"]
    firing = server.firing()
    assert firing <= {"CollectionFlowStalled"}, f"nothing else is wrong: {firing}"

    for title, expr in dashboard_queries().items():
        wait_for(
            functools.partial(server.query, expr), f"data in the panel {title!r}: {expr}", 30, 1
        )
