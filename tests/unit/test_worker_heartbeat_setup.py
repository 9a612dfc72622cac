"""Heartbeat pieces that need no API server: time format, client setup, the null heartbeat."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from collectionflow.api.contract import WorkerConfigError
from collectionflow.api.kube import micro_time
from collectionflow.worker.context import PhaseContext
from collectionflow.worker.heartbeat import (
    NullHeartbeat,
    api_client_from_environment,
    start_heartbeat,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC), "2026-01-02T03:04:05.678901Z"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02T03:04:05.000000Z"),
        (
            dt.datetime(2026, 1, 2, 5, 4, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2026-01-02T03:04:05.000001Z",
        ),
    ],
)
def test_micro_time_is_utc_with_microseconds_and_z(moment: dt.datetime, expected: str) -> None:
    assert micro_time(moment) == expected


def test_without_a_lease_the_heartbeat_does_nothing() -> None:
    ctx = PhaseContext(
        namespace="ns",
        flow_name="flow",
        flow_uid="uid",
        flow_type="collection",
        phase="initialization",
        attempt=1,
        parameters={},
        previous_outputs={},
        manual_input=None,
        heartbeat_lease=None,
        heartbeat_seconds=1.0,
    )
    heartbeat = start_heartbeat(ctx, {})
    assert isinstance(heartbeat, NullHeartbeat)
    heartbeat.pause()
    heartbeat.stop()


def test_no_usable_kubeconfig_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(WorkerConfigError, match="cannot reach the Kubernetes API"):
        api_client_from_environment({"KUBECONFIG": str(tmp_path / "missing")})


def test_the_kubeconfig_comes_from_the_given_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: secret-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""
    )
    api = api_client_from_environment({"KUBECONFIG": str(kubeconfig)})
    try:
        assert api.configuration.host == "https://127.0.0.1:6443"
        assert api.configuration.api_key == {"BearerToken": "Bearer secret-token"}
    finally:
        api.close()
