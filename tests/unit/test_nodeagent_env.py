"""The environment the local node agent computes for a container, as a kubelet would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from harness.nodeagent.model import (
    ContainerConfigError,
    exec_too_long,
    expand,
    field_ref_value,
    resolve_env,
    service_env,
)

pytestmark = pytest.mark.unit


class FakeSources:
    def __init__(
        self,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        config_maps: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.secrets = dict(secrets or {})
        self.config_maps = dict(config_maps or {})
        self.asked: list[tuple[str, str, str]] = []

    def secret(self, namespace: str, name: str) -> Mapping[str, str] | None:
        self.asked.append(("secret", namespace, name))
        return self.secrets.get(name)

    def config_map(self, namespace: str, name: str) -> Mapping[str, str] | None:
        self.asked.append(("configmap", namespace, name))
        return self.config_maps.get(name)


def make_pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "flow-init-1-abcde",
            "namespace": "flows",
            "uid": "1234-5678",
            "labels": {"flows.collectionflow.io/phase": "init"},
            "annotations": {"note": "hi"},
        },
        "spec": {"nodeName": "cf-local-node", "serviceAccountName": "worker", **spec},
    }


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(A)", "alpha"),
        ("x$(A)y$(B)z", "xalphaybetaz"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$", "$"),
        ("$$$$", "$$"),
        ("$", "$"),
        ("a$", "a$"),
        ("$x", "$x"),
        ("$(A", "$(A"),
        ("$()", "$()"),
        ("price: 5$ $(A)", "price: 5$ alpha"),
        ("no variables", "no variables"),
        ("", ""),
    ],
)
def test_expand_like_kubernetes(text: str, expanded: str) -> None:
    assert expand(text, {"A": "alpha", "B": "beta"}) == expanded


def test_literal_values_expand_earlier_variables_and_service_env() -> None:
    container = {
        "env": [
            {"name": "FIRST", "value": "one"},
            {"name": "SECOND", "value": "$(FIRST)-two-$(LATER)"},
            {"name": "API", "value": "https://$(KUBERNETES_SERVICE_HOST)"},
            {"name": "LATER", "value": "three"},
            {"name": "EMPTY"},
        ]
    }

    env = resolve_env(
        make_pod(), container, FakeSources(), service_env={"KUBERNETES_SERVICE_HOST": "127.0.0.1"}
    )

    assert env == {
        "FIRST": "one",
        "SECOND": "one-two-$(LATER)",
        "API": "https://127.0.0.1",
        "LATER": "three",
        "EMPTY": "",
    }


def test_service_env_is_visible_to_expansion_but_not_returned() -> None:
    env = resolve_env(
        make_pod(), {"env": [{"name": "X", "value": "$(S)"}]}, FakeSources(), service_env={"S": "s"}
    )

    assert env == {"X": "s"}


def test_secret_and_config_map_key_refs_read_the_pods_namespace() -> None:
    sources = FakeSources(secrets={"db": {"password": "pw"}}, config_maps={"cfg": {"mode": "fast"}})
    container = {
        "env": [
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        ]
    }

    env = resolve_env(make_pod(), container, sources)

    assert env == {"PASSWORD": "pw", "MODE": "fast"}
    assert sources.asked == [("secret", "flows", "db"), ("configmap", "flows", "cfg")]


def test_values_from_references_are_not_expanded() -> None:
    sources = FakeSources(secrets={"db": {"password": "$(X)"}})
    container = {
        "env": [
            {"name": "X", "value": "x"},
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ]
    }

    assert resolve_env(make_pod(), container, sources)["PASSWORD"] == "$(X)"


@pytest.mark.parametrize(
    ("value_from", "message"),
    [
        ({"secretKeyRef": {"name": "db", "key": "password"}}, 'secret "db" not found'),
        ({"configMapKeyRef": {"name": "cfg", "key": "mode"}}, 'configmap "cfg" not found'),
        (
            {"secretKeyRef": {"name": "present", "key": "nope"}},
            "couldn't find key nope in Secret flows/present",
        ),
        (
            {"configMapKeyRef": {"name": "present", "key": "nope"}},
            "couldn't find key nope in ConfigMap flows/present",
        ),
        ({"resourceFieldRef": {"resource": "limits.cpu"}}, "resourceFieldRef is not supported"),
        ({"fieldRef": {"fieldPath": "status.phase"}}, "unsupported fieldRef"),
    ],
)
def test_missing_references_are_container_config_errors(
    value_from: dict[str, Any], message: str
) -> None:
    sources = FakeSources(secrets={"present": {"k": "v"}}, config_maps={"present": {"k": "v"}})
    container = {"env": [{"name": "X", "valueFrom": value_from}]}

    with pytest.raises(ContainerConfigError, match=message):
        resolve_env(make_pod(), container, sources)


def test_optional_missing_references_leave_the_variable_out() -> None:
    sources = FakeSources(secrets={"present": {"k": "v"}})
    container = {
        "env": [
            {
                "name": "A",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}},
            },
            {
                "name": "B",
                "valueFrom": {"secretKeyRef": {"name": "present", "key": "x", "optional": True}},
            },
            {
                "name": "C",
                "valueFrom": {"configMapKeyRef": {"name": "n", "key": "k", "optional": True}},
            },
        ]
    }

    assert resolve_env(make_pod(), container, sources) == {}


def test_env_from_with_prefix_is_overridden_by_env() -> None:
    sources = FakeSources(
        secrets={"creds": {"USER": "u", "PASSWORD": "p"}}, config_maps={"cfg": {"MODE": "slow"}}
    )
    container = {
        "envFrom": [
            {"configMapRef": {"name": "cfg"}},
            {"prefix": "DB_", "secretRef": {"name": "creds"}},
            {"configMapRef": {"name": "absent", "optional": True}},
        ],
        "env": [{"name": "MODE", "value": "fast-$(DB_USER)"}],
    }

    assert resolve_env(make_pod(), container, sources) == {
        "MODE": "fast-u",
        "DB_USER": "u",
        "DB_PASSWORD": "p",
    }


def test_env_from_a_missing_source_is_an_error() -> None:
    with pytest.raises(ContainerConfigError, match='secret "creds" not found'):
        resolve_env(make_pod(), {"envFrom": [{"secretRef": {"name": "creds"}}]}, FakeSources())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("metadata.name", "flow-init-1-abcde"),
        ("metadata.namespace", "flows"),
        ("metadata.uid", "1234-5678"),
        ("spec.nodeName", "cf-local-node"),
        ("spec.serviceAccountName", "worker"),
        ("status.podIP", "10.1.2.3"),
        ("status.hostIP", "10.1.2.3"),
        ("metadata.labels['flows.collectionflow.io/phase']", "init"),
        ("metadata.annotations['note']", "hi"),
        ("metadata.annotations['absent']", ""),
    ],
)
def test_field_refs(path: str, value: str) -> None:
    assert field_ref_value(make_pod(), path, "10.1.2.3") == value


def test_service_account_defaults_to_default() -> None:
    pod = make_pod()
    del pod["spec"]["serviceAccountName"]

    assert field_ref_value(pod, "spec.serviceAccountName", "127.0.0.1") == "default"


def test_field_refs_resolve_through_env() -> None:
    container = {
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "WHO", "value": "$(POD)@$(IP)"},
        ]
    }

    env = resolve_env(make_pod(), container, FakeSources())

    assert env["WHO"] == "flow-init-1-abcde@127.0.0.1"


@pytest.mark.parametrize(
    ("server", "host", "port", "url"),
    [
        ("https://127.0.0.1:6443", "127.0.0.1", "6443", "tcp://127.0.0.1:6443"),
        ("https://kubernetes.default.svc", "kubernetes.default.svc", "443", None),
        ("http://localhost", "localhost", "80", None),
        ("https://[::1]:8443", "::1", "8443", "tcp://[::1]:8443"),
    ],
)
def test_service_env(server: str, host: str, port: str, url: str | None) -> None:
    env = service_env(server)

    assert env["KUBERNETES_SERVICE_HOST"] == host
    assert env["KUBERNETES_SERVICE_PORT"] == port
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == port
    if url:
        assert env["KUBERNETES_PORT"] == url


def test_exec_refuses_a_string_over_32_pages_or_all_over_arg_max() -> None:
    assert exec_too_long(["run"], {"A": "x" * 1000}) is None
    one = exec_too_long(["run"], {"HUGE": "x" * 200_000})
    assert one is not None
    assert 'exec: "run": argument list too long' in one
    many = {f"V{i}": "x" * 4000 for i in range(64)}
    assert exec_too_long(["run"], many) is None, "64 values of 4 kB pass, as with a runtime"
    assert exec_too_long(["run"], many, arg_max=128 * 1024) is not None
