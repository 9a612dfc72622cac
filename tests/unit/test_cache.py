"""The watch cache: what wakes a flow, what is the operator's own write, what is kept."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from collectionflow.api.names import ANNOTATION_INPUT, ANNOTATION_RETRY, LABEL_FLOW_UID
from collectionflow.controller.context import Outage
from collectionflow.domain.cache import WatchCache
from collectionflow.domain.slim import is_older, slim_job
from collectionflow.specs.patches import merge_patch

pytestmark = pytest.mark.unit
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def flow(rv: str, status: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    meta = {"name": "f", "namespace": "ns", "uid": "u1", "generation": 1, "resourceVersion": rv}
    meta.update(extra)
    return {"metadata": meta, "spec": {"suspend": False}, "status": status or {}}


def job(conditions: list[dict[str, str]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "f-init-1",
            "namespace": "ns",
            "uid": "j1",
            "labels": {LABEL_FLOW_UID: "u1", "unrelated": "x"},
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
        "status": {"conditions": conditions or [], **status},
    }


def pod(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "p1", "namespace": "ns", "labels": {"job-name": "f-init-1"}},
        "status": {"phase": "Running", "containerStatuses": [{"name": "c", "state": state}]},
    }


def test_a_new_flow_wakes_and_an_unchanged_one_does_not() -> None:
    cache = WatchCache()
    assert cache.observe_flow("ADDED", flow("10"))
    finalizer_patch = flow("11", finalizers=["x"])
    assert not cache.observe_flow("MODIFIED", finalizer_patch)


def test_spec_generation_annotation_and_foreign_status_wake() -> None:
    cache = WatchCache()
    cache.observe_flow("ADDED", flow("10"))
    assert cache.observe_flow("MODIFIED", flow("11", generation=2))
    assert cache.observe_flow(
        "MODIFIED", flow("12", generation=2, annotations={ANNOTATION_RETRY: "1"})
    )
    assert cache.observe_flow(
        "MODIFIED",
        flow("13", {"state": "Running"}, generation=2, annotations={ANNOTATION_RETRY: "1"}),
    )


def test_the_operators_own_write_wakes_nobody_and_older_events_do_not_overwrite_it() -> None:
    cache = WatchCache()
    cache.observe_flow("ADDED", flow("10"))
    cache.wrote_flow(flow("12", {"state": "Running"}))
    assert not cache.observe_flow("MODIFIED", flow("11", {"state": "Pending"}))
    assert cache.flow("u1")["status"] == {"state": "Running"}  # type: ignore[index]
    assert not cache.observe_flow("MODIFIED", flow("12", {"state": "Running"}))
    assert cache.observe_flow("MODIFIED", flow("13", {"state": "Failed"}))


def test_a_relisted_flow_newer_than_the_own_write_is_taken() -> None:
    cache = WatchCache()
    cache.wrote_flow(flow("12", {"state": "Running"}))
    assert cache.observe_flow(None, flow("15", {"state": "Suspended"}))
    assert cache.flow("u1")["status"] == {"state": "Suspended"}  # type: ignore[index]


def test_deleted_flow_is_dropped() -> None:
    cache = WatchCache()
    cache.observe_flow("ADDED", flow("10"))
    assert cache.observe_flow("DELETED", flow("11"))
    assert cache.flow("u1") is None


def test_job_wakes_on_conditions_only_and_is_kept_slim() -> None:
    cache = WatchCache()
    assert cache.observe_job("ADDED", job(), T0)
    assert not cache.observe_job("MODIFIED", job(active=1), T0)
    complete = [{"type": "Complete", "status": "True", "lastTransitionTime": "t"}]
    assert cache.observe_job("MODIFIED", job(complete, succeeded=1), T0)
    kept = cache.job("ns", "f-init-1")
    assert kept is not None
    assert kept["status"]["conditions"][0]["type"] == "Complete"
    assert "managedFields" not in kept["metadata"]
    assert "spec" not in kept
    assert kept["metadata"]["labels"] == {LABEL_FLOW_UID: "u1"}


def test_pods_are_kept_slim_per_job_and_wake_nobody() -> None:
    cache = WatchCache()
    assert cache.job_pods("ns", "f-init-1") is None
    cache.observe_pod("ADDED", pod({"waiting": {"reason": "ErrImagePull", "message": "m"}}))
    cache.observe_pod("MODIFIED", pod({"terminated": {"exitCode": 0, "message": "{}"}}))
    [kept] = cache.job_pods("ns", "f-init-1") or []
    assert kept["status"]["containerStatuses"][0]["state"] == {
        "terminated": {"exitCode": 0, "reason": None, "message": "{}", "finishedAt": None}
    }
    cache.observe_pod("DELETED", pod({}))
    assert cache.job_pods("ns", "f-init-1") is None


def test_lease_renew_time_and_job_deletion_forgets_its_pods_and_lease() -> None:
    cache = WatchCache()
    cache.observe_job("ADDED", job(), T0)
    cache.observe_pod("ADDED", pod({}))
    cache.observe_lease(
        "MODIFIED",
        {
            "metadata": {
                "name": "f-init-1",
                "namespace": "ns",
                "ownerReferences": [{"uid": "job-uid", "kind": "Job", "name": "f-init-1"}],
                "managedFields": [{"manager": "worker"}],
            },
            "spec": {"renewTime": "t", "holderIdentity": "f-init-1-x", "leaseDurationSeconds": 9},
        },
    )
    assert cache.lease("ns", "f-init-1") == {
        "metadata": {"ownerReferences": [{"uid": "job-uid"}]},
        "spec": {"renewTime": "t", "holderIdentity": "f-init-1-x"},
    }
    assert cache.observe_job("DELETED", job(), T0)
    assert cache.job("ns", "f-init-1") is None
    assert cache.job_pods("ns", "f-init-1") is None
    assert cache.lease("ns", "f-init-1") is None


def test_slim_job_keeps_what_observe_needs() -> None:
    body = job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}])
    body["status"]["completionTime"] = "2024-01-01T00:00:00Z"
    slim = slim_job(body)
    assert slim["status"]["completionTime"] == "2024-01-01T00:00:00Z"
    assert slim["status"]["conditions"][0]["reason"] == "BackoffLimitExceeded"


@pytest.mark.parametrize(
    ("a", "b", "older"),
    [("9", "10", True), ("10", "9", False), ("10", "10", False), ("x", "10", False)],
)
def test_resource_versions_compare_as_numbers_when_they_are(a: str, b: str, older: bool) -> None:
    assert is_older(a, b) is older


def test_merge_patch_sets_changes_and_nulls_removed_keys() -> None:
    old = {"state": "Running", "phase": "a", "conditions": [1], "nested": {"x": 1, "y": 2}}
    new = {"state": "Running", "phase": "b", "conditions": [1, 2], "nested": {"x": 1}}
    assert merge_patch(old, new) == {
        "phase": "b",
        "conditions": [1, 2],
        "nested": {"y": None},
    }
    assert merge_patch(new, new) == {}


def test_database_health_excuses_jobs_held_by_a_known_outage() -> None:
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    grace = dt.timedelta(seconds=15)
    health = Outage()
    assert not health.seen().excuses(t0, t0 + dt.timedelta(seconds=60), grace)
    assert health.mark_down(t0)
    assert not health.mark_down(t0 + dt.timedelta(seconds=1))
    assert not health.recovered.is_set()
    assert health.seen().excuses(t0 + dt.timedelta(seconds=5), t0 + dt.timedelta(seconds=50), grace)
    back = t0 + dt.timedelta(seconds=60)
    health.mark_up(back)
    assert health.recovered.is_set()
    finished = t0 + dt.timedelta(seconds=30)
    assert health.seen().excuses(finished, back + dt.timedelta(seconds=5), grace)
    assert not health.seen().excuses(finished, back + dt.timedelta(seconds=20), grace)
    assert not health.seen().excuses(
        back + dt.timedelta(seconds=1), back + dt.timedelta(seconds=5), grace
    )


def test_only_flows_with_work_are_swept() -> None:
    cache = WatchCache()
    cache.observe_flow("ADDED", flow("10", {"state": "Running"}))
    assert [f["status"]["state"] for f in cache.active_flows()] == ["Running"]
    cache.wrote_flow(flow("11", {"state": "Succeeded"}))
    assert cache.active_flows() == []
    cache.observe_flow(
        "MODIFIED", flow("12", {"state": "Succeeded"}, annotations={ANNOTATION_RETRY: "1"})
    )
    assert cache.active_flows() == []  # Succeeded stays at rest even with a retry asked
    cache.observe_flow("DELETED", flow("13"))
    assert cache.flow("u1") is None


def test_the_moment_a_watch_first_shows_a_job_finished_is_kept() -> None:
    cache = WatchCache()
    cache.observe_job("ADDED", job(), T0)
    assert cache.finished_seen_at("ns", "f-init-1") is None
    complete = [{"type": "Complete", "status": "True"}]
    later = T0 + dt.timedelta(seconds=40)
    assert cache.observe_job(None, job(complete), later)  # a re-listing after a reconnect
    assert not cache.observe_job("MODIFIED", job(complete), later + dt.timedelta(seconds=5))
    assert cache.finished_seen_at("ns", "f-init-1") == later
    cache.observe_job("DELETED", job(complete), later)
    assert cache.finished_seen_at("ns", "f-init-1") is None


def at(version: str, body: dict[str, Any]) -> dict[str, Any]:
    body["metadata"]["resourceVersion"] = version
    return body


def test_a_job_finished_before_its_create_response_is_handled_stays_finished() -> None:
    # A short Job can be created, run and complete, and its watch say so, before the
    # operator's event loop handles the response of the POST that created it.
    cache = WatchCache()
    complete = [{"type": "Complete", "status": "True"}]
    assert cache.observe_job("MODIFIED", at("12", job(complete)), T0)
    cache.put_job(at("10", job()), "ns", "f-init-1")
    kept = cache.job("ns", "f-init-1")
    assert kept is not None
    assert kept["status"]["conditions"][0]["type"] == "Complete"
    assert not cache.observe_job("MODIFIED", at("11", job(active=1)), T0)
    assert cache.job("ns", "f-init-1") == kept
    cache.put_job(at("13", job(complete)), "ns", "f-init-1")
    assert (cache.job("ns", "f-init-1") or {})["metadata"]["resourceVersion"] == "13"


def test_a_new_job_of_the_same_name_replaces_the_old_whatever_its_version() -> None:
    cache = WatchCache()
    cache.observe_job("MODIFIED", at("12", job()), T0)
    recreated = at("5", job())  # another uid: versions of two objects do not order them
    recreated["metadata"]["uid"] = "j2"
    cache.put_job(recreated, "ns", "f-init-1")
    assert (cache.job("ns", "f-init-1") or {})["metadata"]["uid"] == "j2"


def test_a_relist_forgets_the_jobs_it_lacks_with_their_pods_and_leases() -> None:
    cache = WatchCache()
    cache.observe_job("ADDED", job(), T0)
    cache.observe_pod("ADDED", pod({}))
    other = job()
    other["metadata"] |= {"name": "g-init-1", "namespace": "elsewhere"}
    cache.observe_job("ADDED", other, T0)
    cache.keep_jobs(set(), "ns")  # the Jobs of "ns" were listed again, and f-init-1 is gone
    assert cache.job("ns", "f-init-1") is None
    assert cache.job_pods("ns", "f-init-1") is None
    assert cache.job("elsewhere", "g-init-1") is not None
    cache.keep_jobs({("elsewhere", "g-init-1")}, None)
    assert cache.job("elsewhere", "g-init-1") is not None
    cache.keep_jobs(set(), None)
    assert cache.jobs == {}


def test_a_job_read_back_already_finished_says_so_once() -> None:
    # Adopting a Job after a 409 can find it finished; the watch event saying so may come
    # later and wake nobody, so putting it must tell the caller to wake the flow.
    cache = WatchCache()
    complete = [{"type": "Complete", "status": "True"}]
    assert not cache.put_job(at("10", job()), "ns", "f-init-1")
    assert cache.put_job(at("12", job(complete)), "ns", "f-init-1")
    assert not cache.observe_job("MODIFIED", at("12", job(complete)), T0)
    assert not cache.put_job(at("13", job(complete)), "ns", "f-init-1")


def test_a_status_someone_else_wrote_is_noticed_even_at_rest_and_the_record_kept() -> None:
    cache = WatchCache()
    cache.observe_flow("ADDED", flow("10", {"state": "Running", "phase": "initialization"}))
    cache.wrote_flow(flow("11", {"state": "Succeeded", "progress": "7/7"}))
    assert (
        cache.observe_flow("MODIFIED", flow("11", {"state": "Succeeded", "progress": "7/7"}))
        is False
    )
    assert cache.status_record("u1") is None
    assert not cache.needs_work("u1")  # at rest, and the status is the operator's own

    forged = {"state": "Failed", "progress": "7/7", "message": "forged"}
    assert cache.observe_flow("MODIFIED", flow("12", forged))
    assert cache.status_record("u1") == {"state": "Succeeded", "progress": "7/7"}
    assert cache.needs_work("u1")
    assert cache.active_flows()

    cache.status_restored("u1")
    assert cache.status_record("u1") is None


def test_a_status_forged_before_a_conflicting_write_is_still_put_back_after_the_reread() -> None:
    cache = WatchCache()
    cache.wrote_flow(flow("11", {"state": "Running", "phase": "automated_collection"}))
    cache.stale_flow("u1")  # the operator's next write met a 409: someone wrote in between
    assert cache.flow("u1") is None, "the next read goes to the API"
    assert not cache.active_flows()
    cache.refresh_flow(flow("12", {"state": "Succeeded", "message": "trust me"}))
    assert cache.status_record("u1") == {"state": "Running", "phase": "automated_collection"}
    assert cache.needs_work("u1")


def test_a_flow_gone_is_forgotten_with_its_status_record() -> None:
    cache = WatchCache()
    cache.wrote_flow(flow("11", {"state": "Running"}))
    cache.observe_flow("MODIFIED", flow("12", {"state": "Failed"}))
    assert cache.status_record("u1") is not None
    cache.forget_flow("u1")  # its read found it deleted
    assert cache.status_record("u1") is None
    assert not cache.needs_work("u1")


def test_an_annotation_write_does_not_make_a_foreign_status_the_record() -> None:
    cache = WatchCache()
    cache.wrote_flow(flow("11", {"state": "Running"}))
    cache.wrote_flow(flow("13", {"state": "Succeeded"}), status=False)
    assert cache.status_record("u1") == {"state": "Running"}
    assert cache.observe_flow("MODIFIED", flow("13", {"state": "Succeeded"})) is False
    assert cache.status_record("u1") == {"state": "Running"}


def test_the_event_of_the_operators_own_write_arriving_before_its_response_is_not_foreign() -> None:
    cache = WatchCache()
    cache.observe_flow("ADDED", flow("10", {"state": "Running"}))
    assert cache.observe_flow("MODIFIED", flow("11", {"state": "Failed"}))  # before the response
    assert cache.status_record("u1") is not None  # looks foreign for now
    cache.wrote_flow(flow("11", {"state": "Failed"}))  # the write's response
    assert cache.status_record("u1") is None
    assert not cache.needs_work("u1")


@pytest.mark.parametrize("state", ["WaitingForInput", "Suspended"])
def test_a_flow_that_waits_quietly_is_swept_but_has_no_reconciler(state: str) -> None:
    cache = WatchCache()
    settled = {"state": state, "observedGeneration": 1, "masterFlowId": "m1"}
    cache.wrote_flow(flow("10", settled))
    assert [f["metadata"]["uid"] for f in cache.active_flows()] == ["u1"], "the sweep reminds"
    assert not cache.needs_work("u1")
    first_sight = {"state": state, "observedGeneration": 1}  # its database rows not made yet
    cache.observe_flow("MODIFIED", flow("11", first_sight))
    assert cache.needs_work("u1")
    cache.wrote_flow(flow("12", settled))
    cache.observe_flow("MODIFIED", flow("13", settled, generation=2))  # spec changed
    assert cache.needs_work("u1")
    cache.wrote_flow(flow("14", settled | {"observedGeneration": 2}, generation=2))
    assert not cache.needs_work("u1")
    asked = flow("15", settled | {"observedGeneration": 2}, generation=2)
    asked["metadata"]["annotations"] = {ANNOTATION_INPUT: "{}"}
    cache.observe_flow("MODIFIED", asked)
    assert cache.needs_work("u1")


def test_a_running_flow_always_has_a_reconciler() -> None:
    cache = WatchCache()
    cache.wrote_flow(flow("10", {"state": "Running", "observedGeneration": 1, "masterFlowId": "m"}))
    assert cache.needs_work("u1")


def test_taking_over_adopts_the_previous_leaders_statuses_as_the_record() -> None:
    cache = WatchCache()  # a standby: every status it sees is the leader's write
    cache.observe_flow("ADDED", flow("10", {"state": "Running", "phase": "initialization"}))
    cache.observe_flow("MODIFIED", flow("11", {"state": "Running", "phase": "gap_analysis"}))
    assert cache.status_record("u1") == {"state": "Running", "phase": "initialization"}
    cache.adopt_statuses()
    assert cache.status_record("u1") is None, "nothing to put back after a takeover"
    cache.observe_flow("MODIFIED", flow("12", {"state": "Failed"}))
    assert cache.status_record("u1") == {"state": "Running", "phase": "gap_analysis"}
