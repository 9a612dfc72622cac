"""The pure part of the local node agent (:mod:`harness.nodeagent`).

Everything here is a function of its arguments: which images the agent may run, how a
container's command line and environment follow from the pod spec, what status a kubelet
would report for a pod, and which kubeconfig a pod's process gets. No Kubernetes client, no
processes, no files, so the rules can be unit-tested on their own; the agent does the I/O.

Objects are plain JSON dicts in the API's camelCase spelling, the way the apiserver sends them.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

JsonDict = dict[str, Any]

# What the kubelet keeps of a termination message and, with FallbackToLogsOnError, of the log.
MAX_TERMINATION_MESSAGE_BYTES = 4096
FALLBACK_LOG_BYTES = 2048
FALLBACK_LOG_LINES = 80

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
DEFAULT_SCHEDULER = "default-scheduler"


class ContainerConfigError(Exception):
    """The container cannot be created from its spec yet (kubelet: CreateContainerConfigError).

    The message is what the kubelet would show in the waiting state, e.g.
    ``secret "db" not found``.
    """


# --------------------------------------------------------------------------------------------
# Images


def image_repository(image: str) -> str:
    """The repository of an image reference: without tag and digest, with registry host.

    >>> image_repository("ghcr.io/acme/collectionflow-operator:0.1.0@sha256:abc")
    'ghcr.io/acme/collectionflow-operator'
    """
    name = image.split("@", 1)[0]
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:  # a tag, not the port of a registry host
        name = name[:colon]
    return name


def image_lookup_keys(image: str) -> list[str]:
    """The image_map keys that may name this image, most specific first.

    The full repository (``ghcr.io/acme/app``), the repository without registry host
    (``acme/app``) and the last path component (``app``).
    """
    repository = image_repository(image)
    if not repository:
        return []
    parts = repository.split("/")
    keys = [repository]
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        keys.append("/".join(parts[1:]))
    keys.append(parts[-1])
    return list(dict.fromkeys(keys))


@dataclass(frozen=True)
class ImageMatch:
    """An image the agent runs: the image_map key it matched and the image's entrypoint."""

    key: str
    entrypoint: tuple[str, ...] | None


def match_image(image: str, image_map: Mapping[str, Sequence[str] | None]) -> ImageMatch | None:
    """Which image_map entry runs ``image``, or None when the agent cannot run it.

    A key with a tag (``collectionflow-operator:venv``) matches that tag only; a key without
    one matches every tag of the repository.
    """
    name = image.split("@", 1)[0]
    tag = name[len(image_repository(image)) + 1 :] or "latest"
    for key in [k for base in image_lookup_keys(image) for k in (f"{base}:{tag}", base)]:
        if key in image_map:
            entrypoint = image_map[key]
            return ImageMatch(key, None if entrypoint is None else tuple(entrypoint))
    return None


def container_argv(
    container: JsonDict, entrypoint: Sequence[str] | None, env: Mapping[str, str]
) -> list[str]:
    """The command line of a container, with ``$(VAR)`` expanded from its environment.

    ``command`` + ``args`` behind the image's entrypoint prefix (None: no prefix). Without a
    ``command`` the image's entrypoint is the command, as with Docker's ENTRYPOINT/CMD.
    Raises ContainerConfigError when there is nothing to run.
    """
    command = [expand(part, env) for part in container.get("command") or []]
    args = [expand(part, env) for part in container.get("args") or []]
    argv = [*(entrypoint or ()), *command, *args]
    if not command and not entrypoint:
        raise ContainerConfigError("no command specified and the image has no entrypoint")
    return argv


# --------------------------------------------------------------------------------------------
# Environment


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` is a literal ``$``, unknown names stay as is.

    A port of k8s.io/kubernetes/third_party/forked/golang/expansion.Expand.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    out.append(env.get(name, f"$({name})"))
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


class EnvSources(Protocol):
    """Where ``secretKeyRef``/``configMapKeyRef``/``envFrom`` values come from.

    Both return the decoded data of the object, or None when the object does not exist.
    """

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None: ...

    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None: ...


_LABEL_REF = re.compile(r"metadata\.(labels|annotations)\['(.*)'\]")


def field_ref_value(pod: JsonDict, field_path: str, pod_ip: str) -> str:
    """The value of a downward-API ``fieldRef`` (the paths env vars support)."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple: dict[str, Callable[[], str]] = {
        "metadata.name": lambda: str(metadata.get("name", "")),
        "metadata.namespace": lambda: str(metadata.get("namespace", "")),
        "metadata.uid": lambda: str(metadata.get("uid", "")),
        "spec.nodeName": lambda: str(spec.get("nodeName", "")),
        "spec.serviceAccountName": lambda: service_account_name(pod),
        "status.podIP": lambda: pod_ip,
        "status.podIPs": lambda: pod_ip,
        "status.hostIP": lambda: pod_ip,
    }
    if field_path in simple:
        return simple[field_path]()
    match = _LABEL_REF.fullmatch(field_path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ContainerConfigError(f"unsupported fieldRef {field_path!r} in the local node agent")


def service_account_name(pod: JsonDict) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def _value_from(pod: JsonDict, source: JsonDict, sources: EnvSources, pod_ip: str) -> str | None:
    """One ``valueFrom``; None when an optional reference is missing (variable left out)."""
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    if source.get("fieldRef"):
        return field_ref_value(pod, str(source["fieldRef"]["fieldPath"]), pod_ip)
    for ref_key, kind, fetch in (
        ("secretKeyRef", "Secret", sources.secret),
        ("configMapKeyRef", "ConfigMap", sources.config_map),
    ):
        ref = source.get(ref_key)
        if not ref:
            continue
        name, key, optional = str(ref.get("name", "")), str(ref["key"]), bool(ref.get("optional"))
        data = fetch(namespace, name)
        if data is None:
            if optional:
                return None
            raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
        if key not in data:
            if optional:
                return None
            raise ContainerConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
        return data[key]
    if source.get("resourceFieldRef"):
        raise ContainerConfigError("resourceFieldRef is not supported by the local node agent")
    raise ContainerConfigError(f"unsupported valueFrom {sorted(source)}")


def resolve_env(
    pod: JsonDict,
    container: JsonDict,
    sources: EnvSources,
    *,
    service_env: Mapping[str, str] | None = None,
    pod_ip: str = "127.0.0.1",
) -> dict[str, str]:
    """The variables a container's spec defines, computed as the kubelet does.

    ``envFrom`` first (with prefix, optional sources skipped), then ``env`` in order, which
    wins. ``value`` is ``$(VAR)``-expanded against ``service_env`` and the variables defined
    before it. Raises ContainerConfigError for a missing non-optional Secret, ConfigMap or key.
    """
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    result: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for ref_key, kind, fetch in (
            ("configMapRef", "configmap", sources.config_map),
            ("secretRef", "secret", sources.secret),
        ):
            ref = source.get(ref_key)
            if not ref:
                continue
            name = str(ref.get("name", ""))
            data = fetch(namespace, name)
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind} "{name}" not found')
            for key, value in data.items():
                result[prefix + key] = value
    visible = {**(service_env or {}), **result}
    for variable in container.get("env") or []:
        name = str(variable["name"])
        value_from = variable.get("valueFrom")
        if value_from:
            resolved = _value_from(pod, value_from, sources, pod_ip)
            if resolved is None:
                continue
            value = resolved
        else:
            value = expand(str(variable.get("value") or ""), visible)
        result[name] = value
        visible[name] = value
    return result


def service_env(server: str) -> dict[str, str]:
    """The ``KUBERNETES_SERVICE_*`` variables for an apiserver URL."""
    url = urlsplit(server)
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if url.scheme == "https" else 80)
    bracketed = f"[{host}]" if ":" in host else host
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": f"tcp://{bracketed}:{port}",
    }


# --------------------------------------------------------------------------------------------
# Kubeconfig of a pod's process


def build_kubeconfig(
    *,
    server: str,
    namespace: str,
    token: str | None,
    ca_data: bytes | None,
    insecure: bool = False,
) -> JsonDict:
    """A kubeconfig that authenticates as a ServiceAccount (bearer token) in ``namespace``.

    Without a token the user is anonymous (automountServiceAccountToken: false).
    """
    cluster: JsonDict = {"server": server}
    if ca_data:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode("ascii")
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    user: JsonDict = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "pod", "user": user}],
        "contexts": [
            {
                "name": "pod",
                "context": {"cluster": "cluster", "user": "pod", "namespace": namespace},
            }
        ],
        "current-context": "pod",
        "preferences": {},
    }


# --------------------------------------------------------------------------------------------
# Termination message


def termination_message(
    file_tail: bytes, log_tail: bytes, policy: str | None, exit_code: int
) -> str | None:
    """``state.terminated.message`` as the kubelet fills it.

    ``file_tail``: the end of the termination-message file (at most the last 4096 bytes are
    kept, as the kubelet reads them). With ``FallbackToLogsOnError``, an empty file and a
    non-zero exit code, the last 80 lines / 2048 bytes of the log instead.
    """
    message = file_tail[-MAX_TERMINATION_MESSAGE_BYTES:]
    if not message and policy == "FallbackToLogsOnError" and exit_code != 0:
        lines = log_tail.splitlines(keepends=True)[-FALLBACK_LOG_LINES:]
        message = b"".join(lines)[-FALLBACK_LOG_BYTES:]
    return message.decode("utf-8", errors="replace") if message else None


# --------------------------------------------------------------------------------------------
# Pod status


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str | None = None


@dataclass(frozen=True)
class Running:
    started_at: dt.datetime


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    finished_at: dt.datetime
    started_at: dt.datetime | None = None
    message: str | None = None
    container_id: str | None = None
    signal: int | None = None


ContainerState = Waiting | Running | Terminated


@dataclass(frozen=True)
class ContainerStatus:
    """What the agent knows about one container, the input of :func:`build_pod_status`."""

    name: str
    image: str
    state: ContainerState
    restart_count: int = 0
    last_state: Terminated | None = None
    container_id: str | None = None
    image_id: str = ""


@dataclass(frozen=True)
class PodFailure:
    """A pod-level verdict that overrides the phase computed from containers."""

    reason: str
    message: str
    phase: str = "Failed"


def timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether a container that exited with ``exit_code`` is started again."""
    if restart_policy == "Always":
        return True
    if restart_policy == "OnFailure":
        return exit_code != 0
    return False


def pod_phase(restart_policy: str, containers: Sequence[ContainerStatus]) -> str:
    """The pod phase from its containers, as the kubelet's getPhase computes it."""
    waiting = running = stopped = succeeded = 0
    for container in containers:
        state = container.state
        if isinstance(state, Running):
            running += 1
        elif isinstance(state, Terminated):
            stopped += 1
            succeeded += state.exit_code == 0
        elif container.last_state is not None:
            stopped += 1  # waiting to restart after a previous run
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _state_json(state: ContainerState) -> JsonDict:
    if isinstance(state, Waiting):
        waiting: JsonDict = {"reason": state.reason}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    if isinstance(state, Running):
        return {"running": {"startedAt": timestamp(state.started_at)}}
    terminated: JsonDict = {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "finishedAt": timestamp(state.finished_at),
    }
    if state.started_at is not None:
        terminated["startedAt"] = timestamp(state.started_at)
    if state.message:
        terminated["message"] = state.message
    if state.container_id:
        terminated["containerID"] = state.container_id
    if state.signal:
        terminated["signal"] = state.signal
    return {"terminated": terminated}


def container_status_json(container: ContainerStatus) -> JsonDict:
    running = isinstance(container.state, Running)
    status: JsonDict = {
        "name": container.name,
        "image": container.image,
        "imageID": container.image_id,
        "ready": running,
        "started": running,
        "restartCount": container.restart_count,
        "state": _state_json(container.state),
        "lastState": {} if container.last_state is None else _state_json(container.last_state),
    }
    container_id = container.container_id
    if isinstance(container.state, Terminated) and container.state.container_id:
        container_id = container.state.container_id
    if container_id and not isinstance(container.state, Waiting):
        status["containerID"] = container_id
    return status


def _condition(
    kind: str,
    ok: bool,
    now: dt.datetime,
    previous: Mapping[str, JsonDict],
    reason: str | None = None,
    message: str | None = None,
) -> JsonDict:
    status = "True" if ok else "False"
    before = previous.get(kind)
    since = (
        str(before["lastTransitionTime"])
        if before and before.get("status") == status and before.get("lastTransitionTime")
        else timestamp(now)
    )
    condition: JsonDict = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def build_pod_status(
    *,
    containers: Sequence[ContainerStatus],
    restart_policy: str,
    start_time: dt.datetime,
    now: dt.datetime,
    host_ip: str = "127.0.0.1",
    pod_ip: str = "127.0.0.1",
    failure: PodFailure | None = None,
    previous: JsonDict | None = None,
) -> JsonDict:
    """The pod status a kubelet reports, for a JSON merge patch of the status subresource.

    ``previous`` is the status reported before; conditions keep its ``lastTransitionTime``
    while their status does not change. ``reason``/``message`` are None (deleted by the merge
    patch) unless ``failure`` is given.
    """
    phase = failure.phase if failure else pod_phase(restart_policy, containers)
    before = {
        str(c.get("type")): c for c in ((previous or {}).get("conditions") or []) if c.get("type")
    }
    unready = [c.name for c in containers if not isinstance(c.state, Running)]
    if phase == "Succeeded":
        ready, reason, message = False, "PodCompleted", None
    elif unready:
        names = " ".join(unready)
        ready, reason, message = (
            False,
            "ContainersNotReady",
            f"containers with unready status: [{names}]",
        )
    else:
        ready, reason, message = True, None, None
    scheduled = before.get("PodScheduled")
    conditions = [
        _condition("Initialized", True, now, before),
        _condition("Ready", ready, now, before, reason, message),
        _condition("ContainersReady", ready, now, before, reason, message),
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": (
                scheduled["lastTransitionTime"]
                if scheduled
                and scheduled.get("status") == "True"
                and scheduled.get("lastTransitionTime")
                else timestamp(start_time)
            ),
        },
    ]
    return {
        "phase": phase,
        "reason": failure.reason if failure else None,
        "message": failure.message if failure else None,
        "hostIP": host_ip,
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": timestamp(start_time),
        "conditions": conditions,
        "containerStatuses": [container_status_json(c) for c in containers],
    }


def restart_delay(restarts_so_far: int, base: float, maximum: float) -> float:
    """Back-off before starting a container again: immediately the first time, then doubling.

    Like the kubelet's CrashLoopBackOff (10 s doubling to 5 min), with test-sized numbers.
    """
    if restarts_so_far <= 0:
        return 0.0
    return float(min(base * 2 ** (restarts_so_far - 1), maximum))
