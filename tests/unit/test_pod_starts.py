"""The Jobs not seen to start (`domain.pod_starts`, `WatchCache.unstarted`) and the reads of
their pods (`controller.pod_starts`): who is read, when, and which flow is woken."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectionflow.controller.pod_starts import JOBS_PER_TICK, read_unstarted
from collectionflow.domain.cache import WatchCache
from collectionflow.domain.pod_starts import (
    FIRST_READ,
    LABEL_VALUE,
    LONGEST_GAP,
    Unstarted,
    batches,
    next_read,
    pods_by_job,
)
from collectionflow.k8s.gateway import ApiUnreachable
from collectionflow.metrics import Metrics
from collectionflow.runtime.leaderelection import Leadership
from collectionflow.runtime.workqueue import Wakeups

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
UID = "flow-uid-1"
KEY = ("ns", "f-init-1")


def job(name: str = "f-init-1", condition: str | None = None) -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"job-{name}",
            "resourceVersion": "2" if condition else "1",
            "labels": {"flows.collectionflow.io/flow-uid": UID},
        },
        "status": {"conditions": conditions},
    }


def pod(phase: str, reason: str | None = None, job_name: str = "f-init-1") -> dict[str, Any]:
    state = {"waiting": {"reason": reason, "message": "m"}} if reason else {}
    return {
        "metadata": {
            "name": f"{job_name}-p1",
            "namespace": "ns",
            "labels": {"job-name": job_name, "flows.collectionflow.io/flow-uid": UID},
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "c", "state": state}]},
    }


def test_pods_are_read_ever_less_often_while_they_do_not_start() -> None:
    gaps = []
    at = NOW
    for _ in range(6):
        later = next_read(NOW, at)
        gaps.append((later - at).total_seconds())
        at = later
    assert gaps == [5.0, 5.0, 10.0, 20.0, 40.0, 60.0]
    assert next_read(NOW, NOW + dt.timedelta(hours=1)) - (NOW + dt.timedelta(hours=1)) == (
        LONGEST_GAP
    )


def test_the_longest_due_come_first_and_no_more_than_asked() -> None:
    unstarted = Unstarted()
    for second, name in enumerate(("c", "a", "b")):
        unstarted.add(("ns", name), NOW + dt.timedelta(seconds=second))
    assert unstarted.due(NOW + FIRST_READ - dt.timedelta(seconds=1), 10) == []
    assert unstarted.due(NOW + FIRST_READ + dt.timedelta(seconds=1), 10) == [
        ("ns", "c"),
        ("ns", "a"),
    ]
    assert unstarted.due(NOW + dt.timedelta(minutes=1), 1) == [("ns", "c")]
    unstarted.read(("ns", "c"), NOW + dt.timedelta(minutes=1))
    assert unstarted.due(NOW + dt.timedelta(minutes=1), 3) == [("ns", "a"), ("ns", "b")]


def test_a_job_seen_without_a_start_is_read_and_its_flow_woken_when_what_holds_it_changes() -> None:
    cache = WatchCache()
    cache.observe_job("ADDED", job(), NOW)
    assert KEY in cache.unstarted
    assert cache.unstarted.due(NOW, 10) == [], "a pod is given a few seconds to start"
    at = NOW + FIRST_READ
    assert cache.unstarted.due(at, 10) == [KEY]
    assert cache.pods_read(*KEY, [pod("Pending", "ErrImagePull")], at) == UID
    assert cache.unstarted.due(at, 10) == [], "read again later"
    assert cache.pods_read(*KEY, [pod("Pending", "ErrImagePull")], at) is None, "nothing new"
    assert cache.pods_read(*KEY, [pod("Pending", "ImagePullBackOff")], at) == UID
    assert cache.pods_read(*KEY, [pod("Running")], at) == UID, "it started: the status changes"
    assert KEY not in cache.unstarted
    known = cache.job_pods(*KEY)
    assert known is not None
    assert known[0]["status"]["phase"] == "Running"
    cache.observe_job("MODIFIED", job(), at)
    assert KEY not in cache.unstarted, "a pod known to run is not read again"


def test_a_pod_read_running_or_starting_that_nothing_held_wakes_nobody() -> None:
    cache = WatchCache()
    cache.observe_job("ADDED", job(), NOW)
    assert cache.pods_read(*KEY, [pod("Pending")], NOW + FIRST_READ) is None
    assert KEY in cache.unstarted
    assert cache.pods_read(*KEY, [pod("Running")], NOW + FIRST_READ) is None
    assert KEY not in cache.unstarted


def test_pods_read_for_a_job_deleted_meanwhile_are_not_kept() -> None:
    cache = WatchCache()
    cache.observe_job("ADDED", job(), NOW)
    cache.observe_job("DELETED", job(), NOW)
    assert cache.pods_read(*KEY, [pod("Pending", "ErrImagePull")], NOW + FIRST_READ) is None
    assert cache.job_pods(*KEY) is None


@pytest.mark.parametrize("start", ["lease", "finished pod", "finished job", "deleted job"])
def test_a_job_leaves_the_unstarted_once_anything_shows_it_started_or_it_went(start: str) -> None:
    cache = WatchCache()
    cache.observe_job("ADDED", job(), NOW)
    assert KEY in cache.unstarted
    if start == "lease":
        lease = {"metadata": {"name": "f-init-1", "namespace": "ns"}, "spec": {}}
        cache.observe_lease("ADDED", lease)
    elif start == "finished pod":
        cache.observe_pod("ADDED", pod("Succeeded"))
    elif start == "finished job":
        cache.observe_job("MODIFIED", job(condition="Complete"), NOW)
    else:
        cache.observe_job("DELETED", job(), NOW)
    assert KEY not in cache.unstarted
    assert cache.unstarted.due(NOW + dt.timedelta(hours=1), 10) == []


def test_a_job_listed_with_its_lease_or_run_in_process_is_never_unstarted() -> None:
    cache = WatchCache()
    cache.observe_lease("ADDED", {"metadata": {"name": "f-init-1", "namespace": "ns"}})
    cache.observe_job(None, job(), NOW)
    assert KEY not in cache.unstarted
    cache.put_job(job("f-load-1"), "ns", "f-load-1")
    cache.put_pods("ns", "f-load-1", [pod("Running", job_name="f-load-1")])
    assert ("ns", "f-load-1") not in cache.unstarted


class Reader:
    """A stand-in for the API: each Job's pods, or an error for a read naming a Job listed."""

    def __init__(self, pods: dict[str, list[dict[str, Any]]], failing: set[str]) -> None:
        self.pods, self.failing, self.asked = pods, failing, list[list[str]]()

    async def list_pods_of_jobs(
        self, namespace: str, job_names: Sequence[str]
    ) -> list[dict[str, Any]]:
        self.asked.append(list(job_names))
        if self.failing & set(job_names):
            raise ApiUnreachable("connection refused")
        return [pod for name in job_names for pod in self.pods.get(name, [])]


class Ports:
    def __init__(self, reader: Reader, at: dt.datetime) -> None:
        self.kube, self.cache, self.metrics = reader, WatchCache(), Metrics()
        self.wakeups, self.leadership, self.at = Wakeups(), Leadership(), at

    def clock(self) -> dt.datetime:
        return self.at


def test_the_jobs_due_are_read_together_and_each_flow_woken_for_its_own_pods() -> None:
    held = pod("Pending", "ErrImagePull", "f-b-1")
    reader = Reader({"f-a-1": [pod("Running", job_name="f-a-1")], "f-b-1": [held]}, set())
    ports = Ports(reader, NOW + FIRST_READ)
    woken = ports.wakeups.register(UID)
    for name in ("f-a-1", "f-b-1"):
        ports.cache.observe_job("ADDED", job(name), NOW)
    assert asyncio.run(read_unstarted(ports)) == 2
    assert reader.asked == [["f-a-1", "f-b-1"]], "one request for both"
    assert woken.is_set(), "f-b-1's pod cannot pull its image: its flow is woken"
    assert ("ns", "f-a-1") not in ports.cache.unstarted, "it runs"
    assert ("ns", "f-b-1") in ports.cache.unstarted


def test_a_read_that_fails_is_tried_later() -> None:
    reader = Reader({}, failing={"f-a-1"})
    ports = Ports(reader, NOW + FIRST_READ)
    ports.cache.observe_job("ADDED", job(), NOW)
    assert asyncio.run(read_unstarted(ports)) == 1
    assert KEY in ports.cache.unstarted
    assert asyncio.run(read_unstarted(ports)) == 0, "not due again at once"
    ports.at += LONGEST_GAP
    assert asyncio.run(read_unstarted(ports)) == 1


def test_no_more_than_a_ticks_jobs_at_once() -> None:
    ports = Ports(Reader({}, set()), NOW + FIRST_READ)
    for index in range(JOBS_PER_TICK + 5):
        ports.cache.observe_job("ADDED", job(f"f-{index}-1"), NOW)
    assert asyncio.run(read_unstarted(ports)) == JOBS_PER_TICK
    assert asyncio.run(read_unstarted(ports)) == 5


NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?", fullmatch=True)
ODD = st.text(min_size=1, max_size=80).filter(lambda name: not LABEL_VALUE.fullmatch(name))


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(NAMES, ODD)), max_size=120),
    st.integers(min_value=1, max_value=10),
)
def test_batches_read_every_job_once_by_namespace_and_an_odd_name_alone(
    keys: list[tuple[str, str]], size: int
) -> None:
    reads = batches(keys, size)
    assert sorted((ns, name) for ns, names in reads for name in names) == sorted(keys)
    for namespace, names in reads:
        assert 1 <= len(names) <= size
        if any(not LABEL_VALUE.fullmatch(name) for name in names):
            assert len(names) == 1, f"{names} in {namespace}: an odd name is read alone"


def test_pods_are_grouped_by_their_job_and_an_unlabelled_one_is_left_out() -> None:
    unlabelled = {"metadata": {"name": "x", "labels": {"job-name": ["list"]}}}
    grouped = pods_by_job([pod("Running"), pod("Pending", job_name="f-b-1"), unlabelled, {}])
    assert {name: len(pods) for name, pods in grouped.items()} == {"f-init-1": 1, "f-b-1": 1}
