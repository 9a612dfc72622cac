"""The kubeconfig the local node agent writes for a pod's process (its ServiceAccount)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from kubernetes import config
from kubernetes.client import Configuration

from harness.nodeagent.model import build_kubeconfig

pytestmark = pytest.mark.unit

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_kubeconfig_names_server_ca_token_and_namespace() -> None:
    document = build_kubeconfig(
        server="https://127.0.0.1:6443", namespace="flows", token="tok", ca_data=CA
    )

    [cluster] = document["clusters"]
    [user] = document["users"]
    [context] = document["contexts"]
    assert document["current-context"] == context["name"]
    assert context["context"] == {
        "cluster": cluster["name"],
        "user": user["name"],
        "namespace": "flows",
    }
    assert cluster["cluster"] == {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": base64.b64encode(CA).decode(),
    }
    assert user["user"] == {"token": "tok"}


def test_without_token_the_user_is_anonymous_and_insecure_is_kept() -> None:
    document = build_kubeconfig(
        server="https://h:1", namespace="n", token=None, ca_data=None, insecure=True
    )

    assert document["users"][0]["user"] == {}
    assert document["clusters"][0]["cluster"] == {
        "server": "https://h:1",
        "insecure-skip-tls-verify": True,
    }


def test_the_kubernetes_client_loads_it_as_bearer_token_auth(tmp_path: Path) -> None:
    document = build_kubeconfig(
        server="https://127.0.0.1:6443", namespace="flows", token="s3cr3t", ca_data=CA
    )
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    loaded = Configuration()

    config.load_kube_config(
        config_file=str(path), client_configuration=loaded, persist_config=False
    )

    assert loaded.host == "https://127.0.0.1:6443"
    assert loaded.auth_settings()["BearerToken"]["value"] == "Bearer s3cr3t"
    assert Path(str(loaded.ssl_ca_cert)).read_bytes() == CA
    _, active = config.list_kube_config_contexts(config_file=str(path))
    assert active["context"]["namespace"] == "flows"
