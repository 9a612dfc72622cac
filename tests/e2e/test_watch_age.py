"""`collectionflow_watch_event_age_seconds` means what it says, at the default settings: on an
idle operator whose watches are healthy it stays under a minute (each watch request lasts at
most that long, and the next one answered is a sign of life), and once the network to the
apiserver is cut it grows, second by second, past anything a healthy watch shows, toward the
chart's `CollectionFlowWatchSilent`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collectionflow.runtime.informer import WATCH_REQUEST_SECONDS
from harness.cluster import Cluster
from harness.operator_process import OperatorProcess
from harness.proxy import PartitionProxy
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

AGE = "collectionflow_watch_event_age_seconds"
SLACK_SECONDS = 5  # a new watch request's round trip and the scrape's rounding
IDLE_WINDOW_SECONDS = WATCH_REQUEST_SECONDS + 2 * SLACK_SECONDS


def test_watch_age_stays_under_a_minute_when_idle_and_grows_when_the_watch_is_cut(
    cluster: Cluster,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    tmp_path: Path,
) -> None:
    with PartitionProxy(cluster.api_client().configuration.host) as proxy:
        behind = proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied.kubeconfig")
        operator = start_operator(db_url, kubeconfig=behind)
        wait_for(lambda: operator.metric(AGE) is not None, "the operator's metrics", 60)

        ages: list[float] = []
        window_ends = time.monotonic() + IDLE_WINDOW_SECONDS
        while time.monotonic() < window_ends:
            ages.append(operator.metric(AGE) or 0.0)
            time.sleep(0.5)  # the sampling period of the idle window, not a wait for anything
        print(
            f"idle: {len(ages)} samples over {IDLE_WINDOW_SECONDS}s, age at most {max(ages):.1f}s"
        )
        assert max(ages) <= WATCH_REQUEST_SECONDS + SLACK_SECONDS, "a healthy idle watch lives"

        proxy.cut()
        cut_at = time.monotonic()
        beyond = WATCH_REQUEST_SECONDS + 2 * SLACK_SECONDS
        wait_for(
            lambda: (operator.metric(AGE) or 0.0) > beyond,
            f"the watch age to grow past {beyond}s, more than a healthy watch ever shows",
            2 * beyond,
        )
        since_cut = time.monotonic() - cut_at
        age = operator.metric(AGE) or 0.0
        print(f"cut: the age is {age:.1f}s, {since_cut:.1f}s after the cut")
        assert age <= since_cut + WATCH_REQUEST_SECONDS + SLACK_SECONDS, (
            "it counts from the last sign of life"
        )
