"""`collectionflow_watch_event_age_seconds` means what it says: on an idle operator whose
watches are healthy it stays near zero (each new watch request and each re-list is a sign of
life), and once the network to the apiserver is cut it grows, second by second, until the
chart's `CollectionFlowWatchSilent` would fire."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.cluster import Cluster
from harness.operator_process import OperatorProcess
from harness.proxy import PartitionProxy
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

AGE = "collectionflow_watch_event_age_seconds"
RELIST_SECONDS = 10  # the least the setting takes: a new list and watch every 10 s
IDLE_WINDOW_SECONDS = 15


def test_watch_age_stays_low_when_idle_and_grows_when_the_watch_is_cut(
    cluster: Cluster,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    tmp_path: Path,
) -> None:
    with PartitionProxy(cluster.api_client().configuration.host) as proxy:
        behind = proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied.kubeconfig")
        operator = start_operator(
            db_url,
            kubeconfig=behind,
            COLLECTIONFLOW_OPERATOR__RELIST_SECONDS=str(RELIST_SECONDS),
        )
        wait_for(lambda: operator.metric(AGE) is not None, "the operator's metrics", 60)

        ages: list[float] = []
        window_ends = time.monotonic() + IDLE_WINDOW_SECONDS
        while time.monotonic() < window_ends:
            ages.append(operator.metric(AGE) or 0.0)
            time.sleep(0.2)  # the sampling period of the idle window, not a wait for anything
        print(f"idle: {len(ages)} samples, watch age at most {max(ages):.1f}s")
        assert max(ages) < RELIST_SECONDS + 3, "a healthy idle watch shows its sign of life"

        proxy.cut()
        cut_at = time.monotonic()
        wait_for(
            lambda: (operator.metric(AGE) or 0.0) > 3 * RELIST_SECONDS,
            "the watch age to grow past three re-list periods after the cut",
            90,
        )
        since_cut = time.monotonic() - cut_at
        age = operator.metric(AGE) or 0.0
        print(f"cut: the age is {age:.1f}s, {since_cut:.1f}s after the cut")
        assert age <= since_cut + RELIST_SECONDS + 3, "it counts from the last sign of life"
