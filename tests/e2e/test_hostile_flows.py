"""Flows that a careless or hostile author can write, against the real cluster and PostgreSQL.

Each case asserts the hostile flow's final state, its reason and its Event; then a canary flow
must reach Succeeded within 60 s, and the operator process must still be the one that started
(it never restarted) and healthy. No single object may stop a watch, a sweep or another flow.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectionflow.api.models import GROUP, PLURAL, VERSION
from e2e.test_flow_lifecycle import complete_spec, kubectl, sample_spec
from harness.cluster import Cluster
from harness.flows import Flows
from harness.operator_process import OperatorProcess
from harness.records import journal_rows
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

INPUT = "flows.collectionflow.io/input"
INPUT_COMPLETE = "flows.collectionflow.io/input-complete"
TERMINATION = "${TERMINATION_MESSAGE_PATH:-/dev/termination-log}"


CANARY = sample_spec("collectionflow-complete-data.yaml")


def reason(status: dict[str, Any]) -> str:
    """The reason of the Succeeded condition: why the flow is where it is."""
    return str({c["type"]: c["reason"] for c in status["conditions"]}["Succeeded"])


def own_command(script: str) -> dict[str, Any]:
    """A one-phase-overridden spec: initialization runs `sh -c script` in the worker image."""
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["phases"] = [{"name": "initialization", "command": ["sh", "-c", script], "retries": 0}]
    return spec


DATABASES = ("postgresql",)


@pytest.fixture
def operator(
    start_operator: Callable[..., OperatorProcess], db_url: str, flows: Flows
) -> Iterator[OperatorProcess]:
    process = start_operator(
        db_url,
        COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS="2",
        COLLECTIONFLOW_OPERATOR__QUOTA_GRACE_SECONDS="1",
    )
    assert process.popen is not None
    pid = process.popen.pid
    yield process
    canary_succeeds(flows, process, pid)


def canary_succeeds(flows: Flows, process: OperatorProcess, pid: int) -> None:
    """After each case: a new flow goes end to end within 60 s, the operator never restarted
    and says it is healthy."""
    flows.create("canary", CANARY)
    flows.wait_state("canary", "Succeeded", timeout=60)
    assert process.running, "the operator process died"
    assert process.popen is not None
    assert process.popen.pid == pid
    with urllib.request.urlopen(process.health_url, timeout=5) as response:
        assert response.status == 200
    for wrong in (  # each on its own port, so a NetworkPolicy can open one and not the other
        process.health_url.replace("/healthz", "/metrics"),
        process.metrics_url.replace("/metrics", "/healthz"),
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong, timeout=5)
        assert refused.value.code == 404


def rejected(process: OperatorProcess, kind: str) -> float:
    return process.metric(f'collectionflow_rejected_inputs_total{{kind="{kind}"}}') or 0.0


def warning(flows: Flows, name: str, event_reason: str, saying: str = "") -> str:
    """The message of the flow's Warning Event `event_reason` that says `saying`."""

    def found() -> str | None:
        events = [e for e in flows.events(name) if e.reason == event_reason]
        assert {e.type for e in events} <= {"Warning"}
        return next((str(e.message) for e in events if saying in e.message), None)

    return wait_for(found, f"a Warning {event_reason} Event saying {saying!r}", 30)


def test_a_flow_cannot_ask_to_run_in_the_operators_process(
    flows: Flows, operator: OperatorProcess
) -> None:
    spec = CANARY
    for runner in ("InProcess", "Auto"):
        with pytest.raises(ApiException) as refused:
            flows.create(f"in-process-{runner.lower()}", {**spec, "runner": runner})
        assert refused.value.status == 422
        assert "spec.runner" in str(refused.value.body)


def test_a_phases_own_command_never_runs_in_the_operator_and_sees_no_secret(
    api: client.ApiClient,
    flows: Flows,
    namespace: str,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    tmp_path: Path,
) -> None:
    leak = tmp_path / "leak"
    spec = own_command(f"env > {leak}; exit 0")
    process = start_operator(db_url, COLLECTIONFLOW_OPERATOR__RUNNER="Auto")
    assert process.popen is not None
    client.CoreV1Api(api).create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}}
    )
    flows.create("leaky", spec)
    status = flows.wait_state("leaky", "Failed", timeout=90)
    assert reason(status) == "JobRefused"
    assert "never run in the operator's process" in status["message"]
    assert not leak.exists(), "the flow's command ran in the operator's process"
    client.CoreV1Api(api).delete_namespaced_resource_quota("no-jobs", namespace)
    canary_succeeds(flows, process, process.popen.pid)


def test_an_annotation_nested_5000_deep_on_a_flow_at_rest_blinds_nothing(
    flows: Flows, operator: OperatorProcess
) -> None:
    flows.create("done", CANARY)
    flows.wait_state("done", "Succeeded", timeout=60)
    flows.annotate("done", **{INPUT: "[" * 5000 + "]" * 5000, INPUT_COMPLETE: "true"})
    assert flows.get("done")["status"]["state"] == "Succeeded"


def test_deep_too_large_or_broken_manual_input_is_refused_loudly_and_kept(
    flows: Flows, operator: OperatorProcess
) -> None:
    flows.create("manual", sample_spec())
    flows.wait_state("manual", "WaitingForInput", timeout=60)
    for bad, why in (
        ("{not json", "is not JSON"),
        ("[" * 5000 + "]" * 5000, "nested 5000 deep; the limit is 32"),
        (json.dumps({"answers": {"x": "y" * 200_000}}), "the limit is 65536"),
        ('["answers"]', "must be a JSON object, not an array"),
    ):
        flows.annotate("manual", **{INPUT: bad, INPUT_COMPLETE: "true"})

        def says(status: dict[str, Any], why: str = why) -> bool:
            return why in (status.get("message") or "")

        status = flows.wait_for("manual", says, f"rejected: {why}", 30)
        assert status["state"] == "WaitingForInput"
        assert reason(status) == "InputRejected"
        assert "fix the annotation flows.collectionflow.io/input" in status["message"]
        warning(flows, "manual", "InputRejected", why)
        assert flows.get("manual")["metadata"]["annotations"][INPUT] == bad, "input kept"
    assert len(flows.jobs("manual")) == 5, "no Job for the manual phase on refused input"
    assert rejected(operator, "input") >= 4
    flows.annotate("manual", **{INPUT: '{"answers": {"db-01": {"owner": "dba"}}}'})
    flows.wait_state("manual", "Succeeded", timeout=60)


def test_a_result_nested_1900_deep_fails_its_phase_instead_of_wedging_the_flow(
    flows: Flows, operator: OperatorProcess
) -> None:
    deep = "[" * 1900 + "]" * 1900
    flows.create("deep-result", own_command(f"printf '%s' '{deep}' > {TERMINATION}"))
    status = flows.wait_state("deep-result", "Failed", timeout=60)
    assert reason(status) == "InvalidResult"
    assert "nested 1900 deep; the limit is 32" in status["message"]
    warning(flows, "deep-result", "InvalidResult", "nested 1900 deep")
    assert rejected(operator, "result") >= 1


@pytest.mark.parametrize(
    ("message", "why"),
    [
        pytest.param("hello", "is not JSON", id="not-json"),
        pytest.param(
            '{"state":"succeeded","next_phase":null,"surprise":1}',
            "surprise: Extra inputs are not permitted",
            id="unknown-field",
        ),
    ],
)
def test_a_termination_message_that_is_not_a_result_is_reported(
    flows: Flows, operator: OperatorProcess, message: str, why: str
) -> None:
    flows.create("odd-result", own_command(f"printf '%s' '{message}' > {TERMINATION}"))
    status = flows.wait_state("odd-result", "Failed", timeout=60)
    assert reason(status) == "InvalidResult"
    assert why in status["message"]
    warning(flows, "odd-result", "InvalidResult", why)
    assert [h["name"] for h in status["phaseHistory"]] == ["initialization"]


def test_a_phase_that_loops_moves_its_attempts_on_and_spends_its_budget(
    flows: Flows, operator: OperatorProcess
) -> None:
    spec = complete_spec(platform_detection={"nextPhase": "initialization"})
    spec["maxPhaseRuns"] = 5
    flows.create("loop", spec)
    status = flows.wait_state("loop", "Failed", timeout=60)
    assert reason(status) == "TransitionBudgetExhausted"
    assert "spec.maxPhaseRuns (5)" in status["message"]
    names = [job.metadata.name for job in flows.jobs("loop")]
    assert len(names) == len(set(names)) == 5, names
    assert status["phaseRuns"] == 5
    assert "CaughtUp" not in flows.event_reasons("loop")


def test_a_next_phase_of_253_characters_fails_the_flow_and_is_journaled(
    flows: Flows, operator: OperatorProcess, db_url: str
) -> None:
    created = flows.create("long-next", complete_spec(initialization={"nextPhase": "x" * 253}))
    status = flows.wait_state("long-next", "Failed", timeout=60)
    assert reason(status) == "UnknownPhase"
    rows = wait_for(lambda: journal_rows(db_url, created["metadata"]["uid"]), "journal row")
    assert rows[0].next_phase == "platform_detection"
    assert rows[0].diagnostics["result"]["next_phase"] == "x" * 253


def test_parameters_nested_1100_deep_fail_that_flow_and_blind_nothing(
    cluster: Cluster, flows: Flows, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    """Written as text: Python's own JSON encoder recurses too deep for such an object."""
    deep = '{"a":' * 1100 + "{}" + "}" * 1100
    spec = json.dumps(CANARY)[:-1] + ', "parameters": {"deep": ' + deep + "}}"
    manifest = tmp_path / "deep.json"
    manifest.write_text(
        '{"apiVersion": "flows.collectionflow.io/v1alpha1", "kind": "CollectionFlow", '
        '"metadata": {"name": "deep-spec"}, "spec": ' + spec + "}"
    )
    created = kubectl(cluster, "-n", namespace, "create", "-f", str(manifest), check=False)
    if created.returncode != 0:  # a newer API server may refuse it outright
        assert "deep" in created.stderr or "depth" in created.stderr, created.stderr
        return

    def failed() -> dict[str, Any] | None:  # read by kubectl: the Python client cannot decode it
        read = kubectl(cluster, "-n", namespace, "get", "cflow/deep-spec", "-o=jsonpath={.status}")
        status: dict[str, Any] = json.loads(read.stdout or "{}")
        return status if status.get("state") == "Failed" else None

    status = wait_for(failed, "deep-spec Failed", 60)
    assert reason(status) == "InvalidSpec"
    assert "spec.parameters is nested more than 128 deep" in status["message"]
    warning(flows, "deep-spec", "FlowFailed", "the limit is 32")
    assert rejected(operator, "parameters") >= 1


def test_simulation_knobs_are_refused_unless_the_operator_allows_them(
    flows: Flows, start_operator: Callable[..., OperatorProcess], db_url: str
) -> None:
    process = start_operator(db_url, COLLECTIONFLOW_OPERATOR__ALLOW_SIMULATION="false")
    assert process.popen is not None
    flows.create("knobs", complete_spec(initialization={"sleepSeconds": 1}))
    status = flows.wait_state("knobs", "Failed", timeout=30)
    assert reason(status) == "InvalidSpec"
    assert "does not allow simulation" in status["message"]
    assert flows.jobs("knobs") == []
    canary_succeeds(flows, process, process.popen.pid)


def test_a_phase_env_cannot_override_the_workers_variables(
    flows: Flows, operator: OperatorProcess
) -> None:
    spec = dict(CANARY)
    spec["phases"] = [
        {"name": "initialization", "env": [{"name": "COLLECTIONFLOW_PHASE", "value": "x"}]}
    ]
    with pytest.raises(ApiException) as refused:
        flows.create("env-override", spec)
    assert refused.value.status == 422
    assert "spec.phases.env.name" in str(refused.value.body)


def test_a_status_written_by_someone_else_is_put_back(
    flows: Flows, operator: OperatorProcess
) -> None:
    flows.create("forged", complete_spec(automated_collection={"sleepSeconds": 6}))
    flows.wait_for(
        "forged", lambda s: s.get("phase") == "automated_collection", "automated_collection"
    )
    flows.custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        flows.namespace,
        PLURAL,
        "forged",
        {"status": {"state": "Succeeded", "message": "trust me"}},
    )
    message = warning(flows, "forged", "StatusOverwritten", "state")
    assert "message" in message
    status = flows.wait_state("forged", "Succeeded", timeout=60)
    assert status["progress"] == "7/7"
    assert [h["state"] for h in status["phaseHistory"]] == ["Succeeded"] * 6
    assert (operator.metric("collectionflow_status_overwritten_total") or 0) >= 1

    # At rest too: a forged status on a finished flow is put back.
    flows.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, flows.namespace, PLURAL, "forged", {"status": {"state": "Failed"}}
    )
    flows.wait_for(
        "forged",
        lambda s: (
            s.get("state") == "Succeeded"
            and len([e for e in flows.events("forged") if e.reason == "StatusOverwritten"]) >= 2
        ),
        "the finished flow's status put back",
        30,
    )


def test_a_heartbeat_lease_not_written_by_the_attempts_pod_is_not_believed(
    api: client.ApiClient, flows: Flows, operator: OperatorProcess, namespace: str
) -> None:
    """Another writer in the namespace makes the attempt's Lease first, and keeps it fresh:
    it is neither owned by the attempt's Job nor held by its pod, so the silent phase is
    still found stalled."""
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["recoveryPolicy"] = "Fail"
    spec["phases"] = [
        {"name": "initialization", "command": ["sleep", "120"], "stallTimeoutSeconds": 10}
    ]
    leases = client.CoordinationV1Api(api)
    job_name = "forged-beat-initialization-1"
    flows.create("forged-beat", spec)

    def forge() -> str | None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "metadata": {
                "name": job_name,
                "labels": {"app.kubernetes.io/managed-by": "collectionflow-operator"},
            },
            "spec": {"holderIdentity": "forger", "renewTime": now},
        }
        try:
            leases.create_namespaced_lease(namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            leases.patch_namespaced_lease(job_name, namespace, {"spec": body["spec"]})
        state = (flows.get("forged-beat").get("status") or {}).get("state")
        return state if state == "Failed" else None

    wait_for(forge, "the flow stalled despite the forged heartbeat", 60, interval=1.0)
    status = flows.get("forged-beat")["status"]
    assert reason(status) == "NoProgress"
    warning(flows, "forged-beat", "FlowStalled", "has not heart-beaten")
