"""The pure rules of the local node agent (:mod:`harness.nodeagent`) about a pod's spec.

Everything here is a function of its arguments: which images the agent may run, how a
container's command line and environment follow from the pod spec, which kubeconfig a pod's
process gets and what its termination message is. What the agent reports and sends is in
:mod:`harness.nodeagent.status`. No Kubernetes client, no
processes, no files, so the rules can be unit-tested on their own; the agent does the I/O.

Objects are plain JSON dicts in the API's camelCase spelling, the way the apiserver sends them.
"""

from __future__ import annotations

import base64
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


# The kernel's limits on what execve takes: one argument or "NAME=value" string (32 pages),
# and all of them together (ARG_MAX, which Linux derives from the stack limit; 2 MiB by
# default).
MAX_ARG_STRLEN = 32 * 4096
DEFAULT_ARG_MAX = 2 * 1024 * 1024


def exec_too_long(
    argv: Sequence[str], env: Mapping[str, str], arg_max: int = DEFAULT_ARG_MAX
) -> str | None:
    """Why the kernel would refuse to exec `argv` with `env` (E2BIG), as a runtime says it,
    or None. Each string also costs its terminating NUL and a pointer."""
    strings = [*argv, *(f"{name}={value}" for name, value in env.items())]
    longest = max((len(s.encode()) + 1 for s in strings), default=0)
    total = sum(len(s.encode()) + 1 + 8 for s in strings)
    if longest <= MAX_ARG_STRLEN and total <= arg_max:
        return None
    return (
        f"failed to create containerd task: OCI runtime create failed: unable to start "
        f'container process: exec: "{argv[0] if argv else ""}": argument list too long'
    )


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
