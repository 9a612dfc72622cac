"""The commands users run on flows: get, describe, why, input, retry, suspend, resume, journal,
logs.

Each works through the user's kubeconfig (and so their RBAC) and prints `-o table` (the
default: columns within the terminal's width, as kubectl does), `-o json` or `-o yaml`.
Installed as `kubectl-cflow` too, so `kubectl cflow get` works as a kubectl plugin.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from collectionflow.api.limits import MANUAL_INPUT, InputRejected
from collectionflow.api.models import FlowState
from collectionflow.api.names import ANNOTATION_INPUT, ANNOTATION_INPUT_COMPLETE, ANNOTATION_RETRY
from collectionflow.cli.describe import (
    describe_text,
    journal_data,
    journal_table,
    parse_since,
    read_journal,
)
from collectionflow.cli.tables import Column, age, render, width
from collectionflow.cli.why import diagnosis_from_api, operator_state, why_text
from collectionflow.k8s.flows_client import FlowsClient, FlowsClientError


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        help="namespace of the flow (default: your kubeconfig's current namespace)",
    ),
]
OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table, json or yaml")]
FLOW_COLUMNS = [
    Column("NAME"),
    Column("PHASE"),
    Column("NEXT", optional=True),
    Column("PROGRESS"),
    Column("STATE"),
    Column("ATTEMPT", optional=True),
    Column("AGE", optional=True),
]


def fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def emit(data: Any, output: Output, table: str) -> None:
    if output is Output.JSON:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif output is Output.YAML:
        typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
    else:
        typer.echo(table)


def flow_cells(flow: dict[str, Any], with_namespace: bool) -> list[str]:
    status = flow.get("status") or {}
    meta = flow["metadata"]
    cells = [
        meta["name"],
        status.get("phase") or "",
        status.get("nextPhase") or "",
        f"{status.get('progressPercentage', 0)}%",
        status.get("state") or FlowState.PENDING,
        str(status.get("attempt", 0)),
        age(meta.get("creationTimestamp")),
    ]
    return [meta["namespace"], *cells] if with_namespace else cells


def flows_table(flows: list[dict[str, Any]], with_namespace: bool) -> str:
    columns = ([Column("NAMESPACE")] if with_namespace else []) + FLOW_COLUMNS
    rows = [flow_cells(flow, with_namespace) for flow in flows]
    return render(columns, rows, width()) if rows else "No collection flows found."


def connect() -> FlowsClient:
    try:
        return FlowsClient()
    except Exception as error:
        raise fail(f"cannot reach the cluster: {error}") from None


def get(
    name: Annotated[str | None, typer.Argument(help="one flow; all when left out")] = None,
    namespace: NamespaceOption = None,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="flows of every namespace")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="print changes as they come")
    ] = False,
    output: OutputOption = Output.TABLE,
) -> None:
    """List flows (or one) with phase, progress and state."""
    kube = connect()
    scope = None if all_namespaces else (namespace or kube.default_namespace)
    try:
        if name is not None:
            scope = scope or kube.default_namespace
            flows = [kube.get(scope, name)]
            version = str(flows[0]["metadata"]["resourceVersion"])
        else:
            flows, version = kube.list_flows(scope)
    except FlowsClientError as error:
        raise fail(str(error)) from None
    flows.sort(key=lambda f: (f["metadata"]["namespace"], f["metadata"]["name"]))
    emit(flows if name is None else flows[0], output, flows_table(flows, all_namespaces))
    if watch:
        for flow in kube.watch(scope, version, name):
            emit(flow, output, render_row(flow, all_namespaces))


def render_row(flow: dict[str, Any], with_namespace: bool) -> str:
    columns = ([Column("NAMESPACE")] if with_namespace else []) + FLOW_COLUMNS
    return render(columns, [flow_cells(flow, with_namespace)], width()).splitlines()[1]


def describe(
    name: str, namespace: NamespaceOption = None, output: OutputOption = Output.TABLE
) -> None:
    """A flow's status, phase timeline, conditions, recent Events and failure journal."""
    kube = connect()
    namespace = namespace or kube.default_namespace
    try:
        flow = kube.get(namespace, name)
        events = kube.events(namespace, flow["metadata"]["uid"])
        now = dt.datetime.now(dt.UTC)
        diagnosis = diagnosis_from_api(kube, flow, now)
    except FlowsClientError as error:
        raise fail(str(error)) from None
    journal = read_journal(flow["metadata"]["uid"], None)
    status = flow.get("status") or {}
    data = {
        "flow": flow,
        "why": diagnosis.to_json(),
        "events": events,
        "journal": journal if isinstance(journal, str) else [journal_data(j) for j in journal],
    }
    text = describe_text(flow, status, events, journal)
    emit(data, output, f"{why_text(flow, diagnosis, now)}\n\n{text}")


def journal(
    name: Annotated[
        str | None, typer.Argument(help="one flow's entries; all when left out")
    ] = None,
    namespace: NamespaceOption = None,
    since: Annotated[str | None, typer.Option(help="only newer entries: 30s, 15m, 2h, 7d")] = None,
    flow_uid: Annotated[
        str | None,
        typer.Option(help="one flow's entries by its uid (a flow no longer in the cluster)"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many entries")] = 100,
    output: OutputOption = Output.TABLE,
) -> None:
    """The failure journal (from the database, COLLECTIONFLOW_DB__URL), newest first."""
    window = parse_since(since)
    uid = flow_uid
    if name is not None:
        kube = connect()
        try:
            uid = kube.get(namespace or kube.default_namespace, name)["metadata"]["uid"]
        except FlowsClientError as error:
            raise fail(str(error)) from None
    rows = read_journal(uid, window, limit)
    if isinstance(rows, str):
        raise fail(rows)
    emit([journal_data(row) for row in rows], output, journal_table(rows, width()))


def require_state(flow: dict[str, Any], wanted: str, action: str) -> None:
    """Fail unless the flow is in `wanted`, naming the state it is in."""
    state = (flow.get("status") or {}).get("state") or FlowState.PENDING
    if state != wanted:
        meta = flow["metadata"]
        raise fail(f"{action} needs a {wanted} flow; {meta['namespace']}/{meta['name']} is {state}")


def answers_from(file: Path | None, settings: list[str]) -> dict[str, Any]:
    """The manual input the phase reads, `{"answers": {"<asset>": {"<attribute>": value}}}`,
    from a file holding either that or the answers alone, and `--set asset.attribute=value`."""
    answers: dict[str, Any] = {}
    if file is not None:
        try:
            given = MANUAL_INPUT.parse_object(file.read_bytes())
        except (OSError, InputRejected) as error:
            raise fail(f"cannot use {file}: {error}") from None
        given = given["answers"] if set(given) == {"answers"} else given
        if not isinstance(given, dict) or not all(isinstance(a, dict) for a in given.values()):
            raise fail(
                f'cannot use {file}: answers are {{"<asset>": {{"<attribute>": <value>}}}}, '
                'alone or under "answers"'
            )
        answers.update(given)
    for setting in settings:
        key, sep, value = setting.partition("=")
        asset, dot, attribute = key.partition(".")
        if not sep or not dot or not asset or not attribute:
            raise fail(f"--set {setting!r}: expected asset.attribute=value, e.g. db-01.owner=dba")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        answers.setdefault(asset, {})[attribute] = parsed
    return {"answers": answers}


def _change(
    name: str,
    namespace: str | None,
    output: Output,
    needs: str | None,
    patch_of: Callable[[dict[str, Any]], dict[str, Any]],
    said: str,
) -> None:
    """Read the flow, check its state (`needs`), patch it, and say what was done."""
    kube = connect()
    namespace = namespace or kube.default_namespace
    try:
        flow = kube.get(namespace, name)
        if needs is not None:
            require_state(flow, needs, said.split()[0])
        flow = kube.patch(namespace, name, patch_of(flow))
    except FlowsClientError as error:
        raise fail(str(error)) from None
    emit(flow, output, f"collectionflow/{name} {said}")


def input_(
    name: str,
    namespace: NamespaceOption = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help='a JSON file of answers: {"db-01": {"owner": "dba"}}, alone or under "answers"'
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="one answer, asset.attribute=value (repeatable; JSON values allowed)"
        ),
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Give a flow that waits for input its answers, and let it go on.

    Answers fill the gaps the questionnaire asked about, per asset and attribute:

        collectionflow input acme --set db-01.owner=dba-team --set db-01.criticality=3

        collectionflow input acme --file answers.json   # {"db-01": {"owner": "dba-team"}}
    """
    answers = answers_from(file, set_ or [])
    given = json.dumps(answers, separators=(",", ":"))
    try:
        MANUAL_INPUT.parse_object(given)
    except InputRejected as error:
        raise fail(str(error)) from None
    annotations = {ANNOTATION_INPUT: given, ANNOTATION_INPUT_COMPLETE: "true"}
    patch = {"metadata": {"annotations": annotations}}
    count = sum(len(given) for given in answers["answers"].values())
    said = f"input given ({count} answers for {len(answers['answers'])} assets)"
    _change(name, namespace, output, FlowState.WAITING_FOR_INPUT, lambda _: patch, said)


def retry(
    name: str, namespace: NamespaceOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Retry a Failed flow's failed phase as its next attempt."""
    token = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    patch = {"metadata": {"annotations": {ANNOTATION_RETRY: token}}}
    _change(name, namespace, output, FlowState.FAILED, lambda _: patch, "retry requested")


def suspend(
    name: str, namespace: NamespaceOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Hold a flow before its next phase (the running one finishes)."""
    _change(name, namespace, output, None, lambda _: {"spec": {"suspend": True}}, "suspended")


def resume(
    name: str, namespace: NamespaceOption = None, output: OutputOption = Output.TABLE
) -> None:
    """Let a suspended flow go on."""
    kube = connect()
    try:
        flow = kube.get(namespace or kube.default_namespace, name)
    except FlowsClientError as error:
        raise fail(str(error)) from None
    if not (flow.get("spec") or {}).get("suspend"):
        state = (flow.get("status") or {}).get("state") or FlowState.PENDING
        raise fail(f"{flow['metadata']['namespace']}/{name} is not suspended (it is {state})")
    _change(name, namespace, output, None, lambda _: {"spec": {"suspend": False}}, "resumed")


def logs(
    name: str,
    namespace: NamespaceOption = None,
    phase: Annotated[str | None, typer.Option(help="this phase's latest attempt")] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """The log of the phase Job's pod: the current phase's, or `--phase`'s latest attempt."""
    kube = connect()
    namespace = namespace or kube.default_namespace
    try:
        flow = kube.get(namespace, name)
        wanted = phase or (flow.get("status") or {}).get("phase")
        pods = kube.phase_pods(namespace, flow["metadata"]["uid"], wanted)
        if not pods:
            raise fail(f"no pod of phase {wanted} of {namespace}/{name} (yet, or any more)")
        latest: dict[str, Any] = max(
            pods, key=lambda p: str(p["metadata"].get("creationTimestamp") or "")
        )
        text = kube.pod_log(namespace, latest["metadata"]["name"])
    except FlowsClientError as error:
        raise fail(str(error)) from None
    data = {"pod": latest["metadata"]["name"], "phase": wanted, "log": text}
    emit(data, output, text.rstrip("\n"))


def why(
    name: str,
    namespace: NamespaceOption = None,
    operator_namespace: Annotated[
        str | None,
        typer.Option(help="where the operator's leader Lease is (default: its setting)"),
    ] = None,
    output: OutputOption = Output.TABLE,
) -> None:
    """Why a flow is not moving, what the operator does next, and when."""
    kube = connect()
    namespace = namespace or kube.default_namespace
    now = dt.datetime.now(dt.UTC)
    try:
        flow = kube.get(namespace, name)
        diagnosis = diagnosis_from_api(kube, flow, now)
        operator = operator_state(kube, now, operator_namespace)
    except FlowsClientError as error:
        raise fail(str(error)) from None
    eta = (flow.get("status") or {}).get("estimatedCompletionTime")
    data = diagnosis.to_json() | {"operator": operator, "estimatedCompletionTime": eta}
    emit(data, output, why_text(flow, diagnosis, now, operator))


FLOWS_PANEL = "Flows"


def register(app: typer.Typer) -> None:
    commands: list[tuple[str, Callable[..., None]]] = [
        ("get", get),
        ("describe", describe),
        ("why", why),
        ("input", input_),
        ("retry", retry),
        ("suspend", suspend),
        ("resume", resume),
        ("logs", logs),
        ("journal", journal),
    ]
    for name, command in commands:
        app.command(name, rich_help_panel=FLOWS_PANEL)(command)
