"""The worker contract round trip: what the operator's Job says is what the worker reads."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from collectionflow.api.contract import (
    ENV_JOB_UID,
    JOB_UID_LABEL,
    TERMINATION_MESSAGE_PATH,
    WorkerRequest,
)
from collectionflow.api.models import CollectionFlowSpec
from collectionflow.api.names import LABEL_MANAGED_BY, MANAGED_BY
from collectionflow.domain.plan import plan_for
from collectionflow.specs.jobs import PhaseJobRequest, build_phase_job
from collectionflow.specs.leases import heartbeat_lease
from collectionflow.worker.context import PhaseContext

pytestmark = pytest.mark.unit

JOB_UID = "0b7d8a52-3f0e-4b8e-9a51-1d2b3c4d5e6f"


def kubelet_environment(job: dict[str, Any]) -> dict[str, str]:
    """The environment the kubelet gives the Job's container: values as written, and the
    downward-API label reference resolved the way the Job controller labels its pods."""
    pod_labels = {**job["spec"]["template"]["metadata"]["labels"], JOB_UID_LABEL: JOB_UID}
    [container] = job["spec"]["template"]["spec"]["containers"]
    environ: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            environ[entry["name"]] = entry["value"]
            continue
        path = entry["valueFrom"]["fieldRef"]["fieldPath"]
        assert path == f"metadata.labels['{JOB_UID_LABEL}']"
        environ[entry["name"]] = pod_labels[JOB_UID_LABEL]
    return environ


@pytest.mark.parametrize("manual_input", [None, {"approved": True, "notes": "ok <b>"}])
def test_a_job_built_by_the_operator_is_read_back_by_the_worker_as_the_same_request(
    manual_input: dict[str, Any] | None,
) -> None:
    spec = CollectionFlowSpec.model_validate({})
    request = PhaseJobRequest(
        worker=WorkerRequest(
            namespace="team-a",
            flow_name="assessment.eu",
            flow_uid="6f1f2c84-9a53-4c1e-8d1e-3b8f0f4a9c21",
            flow_type="collection",
            phase="manual_collection",
            attempt=3,
            heartbeat_seconds=2.5,
            parameters={"tenant": "acme", "assets": [{"name": "web-01"}]},
            previous_outputs={"initialization": {"ok": True}},
            manual_input=manual_input,
        ),
        phase=plan_for(spec).phase("manual_collection"),
        image="collectionflow:test",
        service_account="collectionflow-worker",
        image_pull_policy="IfNotPresent",
    )
    job = build_phase_job(request)

    ctx = PhaseContext.from_environ(kubelet_environment(job))

    sent = request.worker_request
    assert dataclasses.asdict(ctx) == dataclasses.asdict(sent) | {
        "heartbeat_lease": sent.job_name,
        "job_uid": JOB_UID,
    }, "every field the operator sends is read back as sent"
    assert ctx.heartbeat_lease == job["metadata"]["name"] == sent.job_name
    assert ctx.job_uid == JOB_UID
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["terminationMessagePath"] == TERMINATION_MESSAGE_PATH
    assert ENV_JOB_UID in {entry["name"] for entry in container["env"]}


def test_the_worker_lease_is_owned_by_its_job_and_carries_the_watched_labels() -> None:
    lease = heartbeat_lease("team-a", "demo-gap-analysis-2", "flow-uid", "pod-x", JOB_UID)
    assert (lease["apiVersion"], lease["kind"]) == ("coordination.k8s.io/v1", "Lease")
    assert lease["metadata"]["labels"][LABEL_MANAGED_BY] == MANAGED_BY
    assert lease["metadata"]["labels"]["flows.collectionflow.io/flow-uid"] == "flow-uid"
    [owner] = lease["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", "demo-gap-analysis-2", JOB_UID)
    assert lease["spec"] == {"holderIdentity": "pod-x"}


def test_a_lease_without_a_known_job_has_no_owner() -> None:
    lease = heartbeat_lease("team-a", "orphan", "flow-uid", "pod-x", None)
    assert "ownerReferences" not in lease["metadata"]
