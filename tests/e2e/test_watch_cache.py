"""What reconciling from a watch cache could break, shown not to: many flows through operator
crashes, a status written by hand, and Jobs that complete while the watches are re-listing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from collectionflow.api.models import GROUP, PLURAL, VERSION
from collectionflow.domain.registry import flow_definition
from harness.cluster import VENV_IMAGE, Cluster
from harness.flows import Flows
from harness.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

PHASES = [phase.name for phase in flow_definition("collection").phases]


def quick_spec() -> dict[str, Any]:
    """Seven phases of `true`: the flow is all transitions."""
    return {
        "clientAccountId": "e2e",
        "parameters": {},
        "phases": [{"name": p, "command": ["true"], "manual": False} for p in PHASES],
    }


def states(api: client.ApiClient, namespace: str) -> Counter[str]:
    listing: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )
    return Counter((f.get("status") or {}).get("state", "None") for f in listing["items"])


def stall_events(flows: Flows) -> list[str]:
    events = flows.core.list_namespaced_event(flows.namespace, field_selector="reason=FlowStalled")
    return [str(event.message) for event in events.items]


def test_hundred_flows_through_three_sigkills_run_every_phase_once(
    api: client.ApiClient,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    tmp_path: Path,
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}"
    env = {"COLLECTIONFLOW_OPERATOR__IMAGE": VENV_IMAGE}
    operator = start_operator(db_url, **env)
    for index in range(100):
        flows.create(f"many-{index:03d}", quick_spec())
    kills = 0
    deadline = time.monotonic() + 600
    while states(api, namespace)["Succeeded"] < 100:
        assert time.monotonic() < deadline, f"not all Succeeded: {states(api, namespace)}"
        if kills < 3:
            time.sleep(6)
            operator.kill()
            kills += 1
            operator = start_operator(db_url, **env)
        else:
            time.sleep(1)
    assert kills == 3
    jobs = flows.batch.list_namespaced_job(namespace).items
    names = [job.metadata.name for job in jobs]
    assert len(names) == len(set(names)) == 100 * len(PHASES), "one Job per phase"
    assert all(name.endswith("-1") for name in names), "no phase ran twice"
    stalls = stall_events(flows)
    print(f"FlowStalled Events in 100 flows through 3 SIGKILLs: {len(stalls)}")
    assert stalls == [], "an operator restart is not a stall"


def test_status_written_by_hand_is_taken_and_the_flow_goes_on(
    flows: Flows, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    start_operator(f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}")
    spec = quick_spec()
    spec["phases"][2]["command"] = ["sleep", "4"]
    flows.create("byhand", spec)
    flows.wait_for(
        "byhand", lambda s: s.get("phase") == PHASES[2] and s.get("state") == "Running", "phase 3"
    )
    flows.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        flows.namespace,
        PLURAL,
        "byhand",
        {"status": {"message": "written by hand", "progressPercentage": 3}},
    )
    status = flows.wait_state("byhand", "Succeeded", timeout=90)
    assert status["progressPercentage"] == 100
    assert status["message"] != "written by hand"
    names = [job.metadata.name for job in flows.jobs("byhand")]
    assert len(names) == len(set(names)) == len(PHASES)


def test_jobs_completing_while_the_watches_relist_are_acted_on(
    cluster: Cluster,
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    tmp_path: Path,
) -> None:
    """The apiserver restarts while phases are finishing: every watch of the operator breaks
    and re-lists, and the Jobs that completed meanwhile arrive in the listing, not as events."""
    if cluster.local is None:
        pytest.skip("restarts only the local control plane's apiserver")
    start_operator(f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}")
    spec = quick_spec()
    spec["phases"][1]["command"] = ["sleep", "2"]
    for index in range(5):
        flows.create(f"relist-{index}", spec)
    for index in range(5):
        flows.wait_for(f"relist-{index}", lambda s: s.get("phase") == PHASES[1], "phase 2")
    cluster.local.control_plane.restart_apiserver()
    for index in range(5):
        flows.wait_state(f"relist-{index}", "Succeeded", timeout=150)
        names = [job.metadata.name for job in flows.jobs(f"relist-{index}")]
        assert len(names) == len(set(names)) == len(PHASES)
    assert stall_events(flows) == []
