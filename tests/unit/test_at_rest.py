"""Flows at rest (Succeeded, or Failed with no retry asked for) get no reconciler and no stall
check; the predicate kopf's filters use, read from the object as the watch delivers it."""

from __future__ import annotations

from typing import Any

import pytest

from collectionflow.api.models import FlowState
from collectionflow.api.names import ANNOTATION_RETRY
from collectionflow.domain.view import flow_view, has_work, observed_state

pytestmark = pytest.mark.unit


def body(state: str | None, retry: str | None = None, token: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {} if state is None else {"state": state}
    if token is not None:
        status["retryToken"] = token
    annotations = {} if retry is None else {ANNOTATION_RETRY: retry}
    return {
        "metadata": {"namespace": "ns", "name": "f", "uid": "u", "annotations": annotations},
        "spec": {},
        "status": status,
    }


@pytest.mark.parametrize(
    ("flow", "work"),
    [
        (body(None), True),
        (body("Pending"), True),
        (body("Running"), True),
        (body("WaitingForInput"), True),
        (body("Suspended"), True),
        (body("Succeeded"), False),
        (body("Succeeded", retry="1"), False),
        (body("Failed"), False),
        (body("Failed", retry="1", token="1"), False),
        (body("Failed", retry="2", token="1"), True),
        (body("Failed", retry="1"), True),
    ],
)
def test_only_flows_with_something_to_decide_have_work(flow: dict[str, Any], work: bool) -> None:
    assert has_work(flow) is work


def test_an_unreadable_status_has_work_so_its_reconciler_can_say_why() -> None:
    broken = body("Succeeded")
    broken["status"]["phaseHistory"] = "not-a-list"
    assert has_work(broken)


def test_a_spec_that_does_not_parse_is_the_machines_to_judge_not_an_error() -> None:
    broken = body("Running")
    broken["spec"] = {"phases": "not-a-list", "runner": "InProcess"}
    view = flow_view(broken)
    assert view.spec_error is not None
    assert "phases" in view.spec_error
    assert "runner" in view.spec_error
    assert not has_work(body("Succeeded") | {"spec": broken["spec"]})


def test_observed_state_reads_the_status_and_defaults_to_pending() -> None:
    assert observed_state(body("Running")) is FlowState.RUNNING
    assert observed_state(body(None)) is FlowState.PENDING
    assert observed_state(body("Bogus")) is FlowState.PENDING
