"""The leader election rules: who may take, renew or must leave the Lease, and what is written."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collectionflow.runtime.lease import (
    ElectionError,
    LeaseRecord,
    Step,
    Timings,
    claim,
    lease_manifest,
    next_step,
    no_leader,
    read_lease,
    release,
)

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)
TIMINGS = Timings(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


def lease(holder: str | None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "leader", "namespace": "ops", "resourceVersion": "41"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-25T11:00:00.000000Z",
            "renewTime": "2026-11-25T11:59:58.000000Z",
            "leaseTransitions": 3,
            **spec,
        },
    }


def test_the_defaults_are_kubernetes_controllers_timings() -> None:
    assert (TIMINGS.lease_duration, TIMINGS.renew_deadline, TIMINGS.retry_period) == (15, 10, 2)


@pytest.mark.parametrize(("duration", "deadline", "retry"), [(10, 10, 2), (15, 10, 10), (15, 0, 0)])
def test_timings_that_cannot_work_are_refused(
    duration: float, deadline: float, retry: float
) -> None:
    with pytest.raises(ElectionError, match="retry period < renew deadline < lease duration"):
        Timings(lease_duration=duration, renew_deadline=deadline, retry_period=retry)


def test_no_lease_is_created() -> None:
    assert next_step(None, "a", 0.0) is Step.CREATE


def test_the_holder_renews_whatever_the_age() -> None:
    assert next_step(read_lease(lease("a")), "a", 100.0) is Step.RENEW


@pytest.mark.parametrize(("unchanged_for", "step"), [(14.9, Step.WAIT), (15.0, Step.ACQUIRE)])
def test_another_holders_lease_is_free_once_unchanged_for_its_duration(
    unchanged_for: float, step: Step
) -> None:
    assert next_step(read_lease(lease("b")), "a", unchanged_for) is step


@pytest.mark.parametrize("holder", [None, ""])
def test_a_released_lease_is_free_at_once(holder: str | None) -> None:
    assert next_step(read_lease(lease(holder)), "a", 0.0) is Step.ACQUIRE


def test_taking_over_counts_a_transition_and_starts_a_new_term() -> None:
    spec = claim(read_lease(lease("b")), "a", NOW, TIMINGS)
    assert spec == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-11-25T12:00:00.000000Z",
        "renewTime": "2026-11-25T12:00:00.000000Z",
        "leaseTransitions": 4,
    }


def test_renewing_keeps_the_term() -> None:
    spec = claim(read_lease(lease("a")), "a", NOW, TIMINGS)
    assert spec["acquireTime"] == "2026-11-25T11:00:00.000000Z"
    assert spec["renewTime"] == "2026-11-25T12:00:00.000000Z"
    assert spec["leaseTransitions"] == 3


def test_the_first_holder_starts_at_zero_transitions() -> None:
    assert claim(None, "a", NOW, TIMINGS)["leaseTransitions"] == 0


def test_a_release_frees_the_lease_for_anyone_at_once() -> None:
    spec = release(read_lease(lease("a")), NOW)
    freed = read_lease({"metadata": {}, "spec": spec})
    assert next_step(freed, "b", 0.0) is Step.ACQUIRE
    assert spec["leaseTransitions"] == 3


def test_a_write_is_conditional_on_the_version_read() -> None:
    record = read_lease(lease("b"))
    replaced = lease_manifest("ops", "leader", {"holderIdentity": "a"}, record)
    created = lease_manifest("ops", "leader", {"holderIdentity": "a"}, None)
    assert replaced["metadata"]["resourceVersion"] == "41"
    assert "resourceVersion" not in created["metadata"]


def test_a_renewal_is_a_new_write_of_the_same_holder() -> None:
    first = read_lease(lease("b"))
    renewed = read_lease({**lease("b"), "metadata": {"resourceVersion": "42"}})
    assert first.same_as(read_lease(lease("b")))
    assert not first.same_as(renewed)
    assert not first.same_as(None)


def test_reading_a_lease_with_nothing_set() -> None:
    record = read_lease({"metadata": {}, "spec": {}})
    assert record == LeaseRecord("", None, None, 0.0, 0, None)


def test_no_operator_leading_is_said_from_the_leader_lease() -> None:
    renewed = NOW - dt.timedelta(seconds=135)
    expired = LeaseRecord("op-1", renewed, renewed, 15.0, 3, "7")
    said = no_leader(expired, "cf-system/leader", NOW)
    assert said is not None
    assert "Lease cf-system/leader expired 120s ago (last held by op-1)" in said
    fresh = LeaseRecord("op-1", NOW - dt.timedelta(seconds=2), NOW, 15.0, 3, "8")
    assert no_leader(fresh, "cf-system/leader", NOW) is None
    assert no_leader(None, "cf-system/leader", NOW) is None
    released = LeaseRecord("", NOW, NOW, 1.0, 3, "9")
    assert "released" in (no_leader(released, "x/y", NOW) or "")
