"""The causes a real cluster produces that keep a phase from moving, one test each: a pod no
node can take, a Secret key that is missing, a worker that hangs, the database going away.
Each flow says the cause in its status within seconds, `why` says what happens next and
when, the operator acts at that time, and the Event and journal row name the cause."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from e2e.diagnosis_checks import (
    SWEEP_SECONDS,
    Cflow,
    acted_when_announced,
    cause_recorded,
    parse,
    reconciling,
    said_within,
)
from e2e.test_flow_lifecycle import sample_spec
from harness.flows import Flows
from harness.operator_process import OperatorProcess
from harness.postgres import PostgresServer
from harness.records import journal_rows
from harness.waiting import wait_for

pytestmark = pytest.mark.e2e

QUICK = {
    "COLLECTIONFLOW_OPERATOR__STALL_CHECK_INTERVAL_SECONDS": str(SWEEP_SECONDS),
    "COLLECTIONFLOW_OPERATOR__RECOVERY_BACKOFF_SECONDS": "0",
}


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, so stopping it disturbs no other test."""
    with PostgresServer() as server:
        yield server


def one_phase(**phase: object) -> dict[str, object]:
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["maxRecoveries"] = 0
    spec["phases"] = [{"name": "initialization", **phase}]
    return spec


def failed_as_announced(flows: Flows, name: str, due: dt.datetime, reason: str) -> None:
    failed = flows.wait_state(name, "Failed", timeout=90)
    acted_when_announced(due, parse(failed["completedAt"]))
    assert {c["type"]: c["reason"] for c in failed["conditions"]}["Succeeded"] == reason


def test_a_pod_no_node_can_take_is_named_and_acted_on_when_announced(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Cflow,
) -> None:
    start_operator(db_url, **QUICK)
    spec = one_phase(stallTimeoutSeconds=15)
    spec["nodeSelector"] = {"collectionflow.io/pool": "nowhere"}
    uid = flows.create("unschedulable", spec)["metadata"]["uid"]
    running = flows.wait_state("unschedulable", "Running", timeout=30)
    said = said_within(
        flows,
        cflow,
        "unschedulable",
        "didn't match node selector",
        parse(running["lastProgressTime"]),
        "PodScheduling",
    )
    assert said.status["message"].startswith("pod cannot be scheduled: 0/1 nodes are available")
    assert "then the flow fails with RecoveryExhausted" in said.why["nextAction"]
    failed_as_announced(flows, "unschedulable", said.due, "RecoveryExhausted")
    cause_recorded(flows, db_url, uid, "unschedulable", "PodNotStarting", "node selector")


def test_a_missing_secret_key_is_named_and_declared_after_a_short_grace(
    api: client.ApiClient,
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Cflow,
) -> None:
    client.CoreV1Api(api).create_namespaced_secret(
        flows.namespace,
        {"metadata": {"name": "collectionflow-phase-creds"}, "stringData": {"user": "u"}},
    )
    start_operator(db_url, **QUICK)
    token = {"secretKeyRef": {"name": "collectionflow-phase-creds", "key": "token"}}
    uid = flows.create("nokey", one_phase(env=[{"name": "TOKEN", "valueFrom": token}]))["metadata"][
        "uid"
    ]
    running = flows.wait_state("nokey", "Running", timeout=30)
    said = said_within(
        flows,
        cflow,
        "nokey",
        "couldn't find key token",
        parse(running["lastProgressTime"]),
        "ContainerConfig",
    )
    assert "CreateContainerConfigError" in said.status["message"]
    grace = (said.due - parse(running["lastProgressTime"])).total_seconds()
    assert grace <= 35, f"a reason that never heals is declared after 30 s, not {grace:.0f} s"
    failed_as_announced(flows, "nokey", said.due, "RecoveryExhausted")
    cause_recorded(flows, db_url, uid, "nokey", "CreateContainerConfigError", "key token")


def test_a_worker_that_stops_beating_is_said_at_once_and_rerun_when_announced(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    db_url: str,
    cflow: Cflow,
) -> None:
    start_operator(db_url, COLLECTIONFLOW_OPERATOR__HEARTBEAT_SECONDS="1", **QUICK)
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["maxRecoveries"] = 1
    spec["phases"] = [{"name": "initialization", "stallTimeoutSeconds": 15}]
    spec["parameters"]["simulate"] = {
        "initialization": {"sleepSeconds": 3, "hangSeconds": 120, "hangAttempts": 1}
    }
    uid = flows.create("hung", spec)["metadata"]["uid"]
    beating = flows.wait_for(
        "hung", lambda s: s.get("state") == "Running", "the first attempt", timeout=30
    )
    assert beating["attempt"] == 1

    def last_beat() -> dt.datetime | None:
        try:
            lease = client.CoordinationV1Api(flows.custom.api_client).read_namespaced_lease(
                beating["currentJob"], flows.namespace
            )
        except client.ApiException as error:
            if error.status == 404:
                return None  # not created before the first beat
            raise
        return lease.spec.renew_time

    wait_for(last_beat, "the worker's first beat", 30)
    said = said_within(
        flows,
        cflow,
        "hung",
        "the worker stopped heart-beating",
        dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
        "Heartbeat",
        seconds=3 + 3 + SWEEP_SECONDS + 4,
    )
    stopped = last_beat()
    assert stopped is not None
    print(f"last beat at {stopped:%H:%M:%S}, said at {said.at:%H:%M:%S}")
    assert (said.at - stopped).total_seconds() <= 10, "said within 10 s of the last beat"
    assert "then attempt 2 (recovery 1 of 1)" in said.why["nextAction"]

    recovered = flows.wait_for("hung", lambda s: s.get("recoveries") == 1, "the recovery", 60)
    acted_when_announced(said.due, parse(recovered["lastRecoveryTime"]))
    done = flows.wait_state("hung", "Succeeded", timeout=90)
    assert reconciling(done)["reason"] != "Waiting"
    cause_recorded(flows, db_url, uid, "hung", "has not heart-beaten")


def test_the_database_going_away_is_said_by_every_held_flow_and_taken_back(
    flows: Flows,
    start_operator: Callable[..., OperatorProcess],
    own_postgres: PostgresServer,
    cflow: Cflow,
) -> None:
    url = own_postgres.create_database("held")
    start_operator(url, **QUICK)
    spec = sample_spec("collectionflow-complete-data.yaml")
    spec["parameters"]["simulate"] = {"platform_detection": {"sleepSeconds": 6}}
    uid = flows.create("dbheld", spec)["metadata"]["uid"]
    flows.wait_for(
        "dbheld", lambda s: s.get("phase") == "platform_detection", "the second phase", 60
    )
    own_postgres.halt()
    halted = dt.datetime.now(dt.UTC)
    status = flows.wait_for(
        "dbheld",
        lambda s: "the database is unavailable" in (s.get("message") or ""),
        "the status saying the database holds the flow",
        timeout=30,
    )
    said_at = dt.datetime.now(dt.UTC)
    print(
        f"database halted at {halted:%H:%M:%S}, said {(said_at - halted).total_seconds():.1f}s on"
    )
    assert (said_at - halted).total_seconds() <= 10
    assert reconciling(status)["reason"] == "Waiting"
    why = cflow("why", "dbheld", "-n", flows.namespace)
    assert "Waits for:  Database" in why.stdout, why.stdout
    assert "it goes on when the database answers" in why.stdout
    flows.wait_event("dbheld", "DatabaseUnavailable", timeout=30)

    own_postgres.start()
    back = dt.datetime.now(dt.UTC)
    moving = flows.wait_for(
        "dbheld",
        lambda s: reconciling(s)["reason"] != "Waiting" or s.get("state") == "Succeeded",
        "the word taken back",
        timeout=30,
    )
    print(f"database back at {back:%H:%M:%S}, flow moving: {moving['message']}")
    flows.wait_state("dbheld", "Succeeded", timeout=120)
    flows.wait_event("dbheld", "DatabaseRecovered", timeout=30)
    rows = wait_for(lambda: journal_rows(url, uid), "the outage's journal row", 30)
    assert any("the database was unavailable from" in (r.error_message or "") for r in rows)
