"""A flow from `kubectl apply` to Succeeded or Failed, with the operator as a real process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from collectionflow.api.models import GROUP
from collectionflow.db.models import CollectionFlow, FailureJournal, MasterFlow, PhaseRun
from collectionflow.domain.registry import COLLECTION
from harness.cluster import Cluster
from harness.flows import REPO, Flows
from harness.operator_process import OperatorProcess
from harness.records import journal_rows
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

SEVEN = list(COLLECTION.phase_names)
INPUT = '{"answers": {"db-01": {"owner": "dba-team"}}}'


def sample_spec(name: str = "collectionflow-sample.yaml") -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((REPO / "crds" / "samples" / name).read_text())["spec"]
    spec.get("parameters", {}).pop("simulate", None)
    return spec


def complete_spec(**simulate: dict[str, Any]) -> dict[str, Any]:
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["parameters"]["simulate"] = simulate
    return spec


def kubectl(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(["kubectl", *args], env=env, capture_output=True, text=True, check=check)


def db_rows(url: str, uid: str) -> dict[str, Any]:
    async def query() -> dict[str, Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                child = (
                    await conn.execute(select(CollectionFlow).where(CollectionFlow.k8s_uid == uid))
                ).one()
                master = (
                    await conn.execute(
                        select(MasterFlow).where(MasterFlow.id == child.master_flow_id)
                    )
                ).one()
                runs = (
                    await conn.execute(
                        select(PhaseRun.phase, PhaseRun.attempt, PhaseRun.state)
                        .where(PhaseRun.flow_id == child.id)
                        .order_by(PhaseRun.id)
                    )
                ).all()
                journal = (
                    await conn.execute(select(FailureJournal).where(FailureJournal.k8s_uid == uid))
                ).all()
                masters = (
                    await conn.execute(select(func.count()).select_from(MasterFlow))
                ).scalar()
                return {
                    "child": child,
                    "master": master,
                    "runs": [tuple(r) for r in runs],
                    "journal": journal,
                    "masters": masters,
                }
        finally:
            await engine.dispose()

    return asyncio.run(query())


DATABASES = ("sqlite", "postgresql")


def test_sample_flow_runs_seven_phases_as_seven_jobs(
    cluster: Cluster,
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    namespace: str,
) -> None:
    start_operator(db_url)
    uid = flows.create("acme", sample_spec())["metadata"]["uid"]

    waiting = flows.wait_state("acme", "WaitingForInput")
    assert waiting["phase"] == "manual_collection"
    assert waiting["nextPhase"] == "synthesis"
    time.sleep(2)
    assert flows.get("acme")["status"]["state"] == "WaitingForInput", "must hold for input"
    assert len(flows.jobs("acme")) == 5, "no Job for the manual phase before its input"

    flows.annotate(
        "acme",
        **{
            "flows.collectionflow.io/input-complete": "true",
            "flows.collectionflow.io/input": INPUT,
        },
    )
    waited = kubectl(
        cluster,
        "-n",
        namespace,
        "wait",
        "--for=condition=Succeeded",
        "cflow/acme",
        "--timeout=120s",
    )
    assert "condition met" in waited.stdout

    status = flows.get("acme")["status"]
    assert status["state"] == "Succeeded"
    assert status["progressPercentage"] == 100
    assert status["progress"] == "7/7"
    assert "nextPhase" not in status
    assert [h["name"] for h in status["phaseHistory"]] == SEVEN
    assert {h["state"] for h in status["phaseHistory"]} == {"Succeeded"}
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
        "Succeeded": "True",
    }

    jobs = sorted(job.metadata.name for job in flows.jobs("acme"))
    assert jobs == sorted(f"acme-{p.replace('_', '-')}-1" for p in SEVEN)
    reasons = flows.wait_event("acme", "FlowSucceeded")
    # The successes that led to the manual phase and to the end are said by InputRequired and
    # FlowSucceeded, in the same Event.
    assert reasons.count("PhaseSucceeded") == 5
    messages = [str(e.message) for e in flows.events("acme")]
    for phase in SEVEN:  # each start and success is said once, alone or with what followed
        assert sum(f"running phase {phase} (attempt 1)" in m for m in messages) == 1, messages
        assert sum(f"phase {phase} attempt 1 succeeded" in m for m in messages) == 1, messages
    assert len(reasons) < 2 * 7, "a phase that succeeds and the next one's start: one Event"
    assert "InputRequired" in reasons
    assert "FlowSucceeded" in reasons
    assert "Warning" not in {e.type for e in flows.events("acme")}

    rows = db_rows(db_url, uid)
    assert rows["child"].status == "completed"
    assert rows["child"].current_phase == "finalization"
    assert rows["child"].progress_percentage == 100
    assert rows["master"].id == status["masterFlowId"] != status["childFlowId"]
    assert rows["master"].status == "completed"
    assert rows["runs"] == [(p, 1, "succeeded") for p in SEVEN]
    assert rows["journal"] == []

    table = kubectl(cluster, "-n", namespace, "get", "collectionflows").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "NEXT", "PROGRESS", "STATE", "ATTEMPT", "AGE"]
    assert table[1].split()[:5] == ["acme", "synthesis", "100", "Succeeded", "1"]
    wide = kubectl(cluster, "-n", namespace, "get", "cflows", "-o", "wide").stdout
    assert "MESSAGE" in wide.splitlines()[0]
    assert "all phases completed" in wide

    # A flow joining acme's master flow with an account of its own is told it is not stored.
    joining = {**sample_spec(), "masterFlowId": status["masterFlowId"], "clientAccountId": "other"}
    joined_uid = flows.create("acme-joined", joining)["metadata"]["uid"]
    flows.wait_event("acme-joined", "MasterFieldsUnused")
    [warning] = [e for e in flows.events("acme-joined") if e.reason == "MasterFieldsUnused"]
    assert warning.type == "Warning"
    assert "spec.clientAccountId and spec.engagementId not stored" in str(warning.message)
    joined_rows = db_rows(db_url, joined_uid)
    assert joined_rows["master"].id == status["masterFlowId"]
    assert joined_rows["master"].client_account_id == "acme", "the joined master keeps its own"
    flows.delete("acme-joined")


def test_operator_killed_mid_phase_resumes_without_duplicate_jobs(
    flows: Flows, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}"
    operator = start_operator(db_url)
    flows.create("crash", complete_spec(automated_collection={"sleepSeconds": 6}))
    flows.wait_for(
        "crash",
        lambda s: s.get("phase") == "automated_collection" and s.get("state") == "Running",
        "automated_collection running",
    )
    operator.kill()
    time.sleep(7)  # the phase's Job completes while no operator is running
    start_operator(db_url)

    status = flows.wait_state("crash", "Succeeded")
    names = [job.metadata.name for job in flows.jobs("crash")]
    assert len(names) == len(set(names)) == 6, names  # manual_collection skipped: no gaps
    assert all(name.endswith("-1") for name in names), "one attempt per phase"
    assert [h["name"] for h in status["phaseHistory"]] == [
        p for p in SEVEN if p != "manual_collection"
    ]


def test_failing_phase_fails_flow_with_event_and_journal(
    cluster: Cluster,
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    postgres_server: Any,
    namespace: str,
) -> None:
    db_url = postgres_server.create_database(f"fail_{os.urandom(4).hex()}")
    start_operator(db_url)
    spec = complete_spec(gap_analysis={"exitCode": 3})
    spec["phases"] = [{"name": "gap_analysis", "retries": 1}]
    uid = flows.create("broken", spec)["metadata"]["uid"]

    status = flows.wait_state("broken", "Failed", timeout=180)
    assert status["phase"] == "gap_analysis"
    assert "exit code 3" in status["message"]
    assert "after 1 retry" in status["message"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Succeeded"] == ("False", "PhaseFailed")
    assert conditions["Stalled"] == ("True", "PhaseFailed")
    flows.wait_event("broken", "FlowFailed")
    warnings = {e.reason for e in flows.events("broken") if e.type == "Warning"}
    assert {"PhaseFailed", "FlowFailed"} <= warnings

    pods = flows.core.list_namespaced_pod(
        namespace, label_selector="job-name=broken-gap-analysis-1"
    )
    assert len(pods.items) == 2, "backoffLimit = retries: one retry of the pod"

    journal = db_rows(db_url, uid)["journal"]
    assert len(journal) == 1
    entry = journal[0]
    assert entry.phase == "gap_analysis"
    assert entry.operation == "run_phase"
    assert entry.next_phase == "questionnaire_generation"
    assert entry.diagnostics["exit_code"] == 3
    assert entry.diagnostics["attempt"] == 1
    assert entry.diagnostics["job_name"] == "broken-gap-analysis-1"
    assert entry.agent_decision
    assert entry.master_flow_id == status["masterFlowId"]


def test_invalid_manifests_are_rejected_or_failed_clearly(
    cluster: Cluster,
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    tmp_path: Path,
    namespace: str,
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}"
    start_operator(db_url)
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(
        "apiVersion: flows.collectionflow.io/v1alpha1\nkind: CollectionFlow\n"
        "metadata: {name: typo}\nspec: {flowTyp: collection}\n"
    )
    typo = kubectl(cluster, "-n", namespace, "apply", "-f", str(manifest), check=False)
    assert typo.returncode != 0
    assert 'unknown field "flowTyp"' in typo.stderr

    bad_specs: list[tuple[dict[str, Any], str]] = [
        ({"phases": [{"name": "initialization", "timeoutSeconds": -5}]}, "timeoutSeconds"),
        ({"suspend": "yes"}, "suspend"),
        ({"maxRecoveries": "many"}, "maxRecoveries"),
    ]
    for bad_spec, complaint in bad_specs:
        with pytest.raises(ApiException) as rejected:
            flows.create("bad", bad_spec)
        assert rejected.value.status == 422
        assert complaint in str(rejected.value.body)

    flows.create("unknown-phase", {"phases": [{"name": "teleportation", "retries": 1}]})
    status = flows.wait_state("unknown-phase", "Failed")
    assert "teleportation" in status["message"]
    assert "InvalidSpec" in {c["reason"] for c in status["conditions"]}
    assert "FlowFailed" in flows.wait_event("unknown-phase", "FlowFailed")
    assert flows.jobs("unknown-phase") == []

    flows.create("bad-next", complete_spec(initialization={"nextPhase": "nowhere"}))
    status = flows.wait_state("bad-next", "Failed")
    assert "unknown next phase" in status["message"]
    assert "nowhere" in status["message"]

    missing = "0f0e0d0c-0b0a-4009-8807-060504030201"
    uid = flows.create("orphan", {**complete_spec(), "masterFlowId": missing})["metadata"]["uid"]
    status = flows.wait_state("orphan", "Failed")
    assert missing in status["message"]
    assert ("False", "UnknownMasterFlow") in {
        (c["status"], c["reason"]) for c in status["conditions"] if c["type"] == "Succeeded"
    }
    flows.wait_event("orphan", "FlowFailed")
    assert flows.jobs("orphan") == []
    [entry] = journal_rows(db_url, uid)
    assert (entry.operation, entry.ids) == ("UnknownMasterFlow", None)
    assert missing in (entry.error_message or "")


def test_suspend_holds_and_resumes(
    flows: Flows, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    start_operator(f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}")
    spec = complete_spec(platform_detection={"sleepSeconds": 3})
    spec["suspend"] = True
    flows.create("paused", spec)
    status = flows.wait_state("paused", "Suspended")
    assert status["phase"] == "initialization"
    time.sleep(2)
    assert flows.jobs("paused") == [], "a suspended flow starts no Job"

    flows.patch("paused", {"spec": {"suspend": False}})
    flows.wait_for("paused", lambda s: s.get("phase") == "platform_detection", "second phase")
    flows.patch("paused", {"spec": {"suspend": True}})
    status = flows.wait_state("paused", "Suspended")
    assert status["phase"] == "automated_collection", "the running phase finished first"
    assert [h["state"] for h in status["phaseHistory"]] == ["Succeeded", "Succeeded"]

    flows.patch("paused", {"spec": {"suspend": False}})
    flows.wait_state("paused", "Succeeded")
    assert {"FlowSuspended", "FlowResumed"} <= set(flows.event_reasons("paused"))


def test_deleting_a_flow_deletes_its_jobs_and_cancels_its_rows(
    flows: Flows, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}"
    start_operator(db_url)
    uid = flows.create("doomed", complete_spec(platform_detection={"sleepSeconds": 30}))[
        "metadata"
    ]["uid"]
    flows.wait_for("doomed", lambda s: s.get("phase") == "platform_detection", "second phase")
    assert len(flows.jobs("doomed")) == 2
    flows.delete("doomed")

    wait_for(
        lambda: not flows.jobs("doomed"), "the garbage collector to delete the flow's Jobs", 60
    )

    def cancelled() -> dict[str, Any] | None:
        rows = db_rows(db_url, uid)
        return rows if rows["child"].status == "cancelled" else None

    # The operator marks the rows on the flow's DELETED event, not after the Jobs are gone.
    rows = wait_for(cancelled, "the flow's rows marked cancelled")
    assert ("platform_detection", 1, "cancelled") in rows["runs"]


def test_a_flow_deleted_while_the_operator_is_down_has_its_rows_cancelled_on_return(
    flows: Flows, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}"
    operator = start_operator(db_url)
    spec = complete_spec(platform_detection={"sleepSeconds": 30})
    gone = flows.create("gone", spec)["metadata"]["uid"]
    kept = flows.create("kept", spec)["metadata"]["uid"]
    for name in ("gone", "kept"):
        flows.wait_for(name, lambda s: s.get("phase") == "platform_detection", "second phase")
    assert flows.get("gone")["metadata"].get("finalizers") is None, "no finalizer holds a flow"
    operator.kill()
    flows.delete("gone")
    wait_for(lambda: flows.get_or_none("gone") is None, "the flow deleted without an operator")

    start_operator(db_url, "operator-2.log")
    wait_for(
        lambda: db_rows(db_url, gone)["child"].status == "cancelled",
        "the unwatched deletion caught up",
        timeout=60,
        interval=0.5,
    )
    assert ("platform_detection", 1, "cancelled") in db_rows(db_url, gone)["runs"]
    flows.wait_state("kept", "Succeeded", timeout=120)
    assert db_rows(db_url, kept)["child"].status != "cancelled", "a flow still there is kept"


def test_a_finalizer_left_by_an_earlier_version_is_removed(
    flows: Flows, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    """Earlier versions ran each flow in a kopf daemon, which holds a finalizer."""
    flows.create("legacy", complete_spec())
    flows.patch("legacy", {"metadata": {"finalizers": [f"{GROUP}/finalizer"]}})
    start_operator(f"sqlite+aiosqlite:///{tmp_path / 'flows.sqlite'}")
    wait_for(
        lambda: not flows.get("legacy")["metadata"].get("finalizers"), "the old finalizer gone"
    )
    flows.delete("legacy")
    wait_for(lambda: flows.get_or_none("legacy") is None, "the flow deleted")
