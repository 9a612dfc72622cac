"""A pod's identity: its ServiceAccount token, written as the kubeconfig its processes use.

The kubelet mounts a ServiceAccount token into a pod; the agent writes it into the pod's
directory (``serviceaccount/`` for image pods, ``kubeconfig`` for venv processes), so RBAC
applies to the pod's processes as it would in a cluster.
"""

from __future__ import annotations

import base64
import contextlib
import time
from pathlib import Path

import yaml

from harness.nodeagent.bodies import token_request
from harness.nodeagent.kube import KubeApiError, NodeApi
from harness.nodeagent.model import JsonDict, build_kubeconfig, service_account_name


class NotReady(Exception):
    """A precondition of starting a container is not there yet; retried later."""


class PodIdentity:
    """The identity of one pod, written once into its directory."""

    def __init__(self, api: NodeApi, pod_dir: Path, namespace: str) -> None:
        self.api = api
        self.dir = pod_dir
        self.namespace = namespace
        self._kubeconfig: Path | None = None
        self._not_before = 0.0

    def kubeconfig(self, pod: JsonDict) -> Path:
        """The pod's kubeconfig (ServiceAccount token), written once; NotReady until the
        token exists."""
        if self._kubeconfig is not None:
            return self._kubeconfig
        if time.monotonic() < self._not_before:
            raise NotReady("waiting for the ServiceAccount token")
        try:
            token, sa_ca = self._service_account_token(pod)
        except NotReady:
            self._not_before = time.monotonic() + 1.0
            raise
        kube = self.api.kube
        ca_data = kube.ca_data or sa_ca
        document = build_kubeconfig(
            server=kube.server,
            namespace=self.namespace,
            token=token,
            ca_data=ca_data,
            insecure=kube.insecure,
        )
        (self.dir / "fs").mkdir(parents=True, exist_ok=True)
        account_dir = self.dir / "serviceaccount"
        account_dir.mkdir(parents=True, exist_ok=True)
        (account_dir / "namespace").write_text(self.namespace)
        if token:
            (account_dir / "token").write_text(token)
        if ca_data:
            (account_dir / "ca.crt").write_bytes(ca_data)
        path = self.dir / "kubeconfig"
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        self._kubeconfig = path
        return path

    def _service_account_token(self, pod: JsonDict) -> tuple[str | None, bytes | None]:
        """The token (and ca.crt) a kubelet would mount for the pod's ServiceAccount.

        The ``<sa>-token-xxxxx`` secret volume the ServiceAccount admission plugin added (1.20),
        else a projected token volume (TokenRequest, 1.21+), else the ServiceAccount's token
        secret; raises NotReady until the token controller has created it.
        """
        kube = self.api.kube
        account = service_account_name(pod)
        spec = pod.get("spec") or {}
        volumes = spec.get("volumes") or []
        for volume in volumes:
            secret_name = str((volume.get("secret") or {}).get("secretName") or "")
            if secret_name.startswith(f"{account}-token-"):
                return self._token_secret(secret_name)
        for volume in volumes:
            for source in (volume.get("projected") or {}).get("sources") or []:
                if source.get("serviceAccountToken"):
                    return self._request_token(pod, account), None
        if spec.get("automountServiceAccountToken") is False:
            return None, None
        path = f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}"
        service_account = kube.get(path)
        if service_account is None:
            raise NotReady(f'serviceaccount "{account}" not found')
        if service_account.get("automountServiceAccountToken") is False:
            return None, None
        for reference in service_account.get("secrets") or []:
            with contextlib.suppress(NotReady):
                return self._token_secret(str(reference.get("name")))
        return self._request_token(pod, account), None

    def _token_secret(self, name: str) -> tuple[str, bytes | None]:
        secret = self.api.kube.get(f"/api/v1/namespaces/{self.namespace}/secrets/{name}")
        if secret is None:
            raise NotReady(f'secret "{name}" not found')
        data = secret.get("data") or {}
        if secret.get("type") != "kubernetes.io/service-account-token" or not data.get("token"):
            raise NotReady(f'secret "{name}" holds no ServiceAccount token yet')
        ca = data.get("ca.crt")
        return base64.b64decode(data["token"]).decode(), base64.b64decode(ca) if ca else None

    def _request_token(self, pod: JsonDict, account: str) -> str:
        metadata = pod["metadata"]
        body = token_request(str(metadata["name"]), str(metadata["uid"]))
        try:
            answer = self.api.request_token(self.namespace, account, body)
        except KubeApiError as error:
            raise NotReady(f'no token for serviceaccount "{account}": {error}') from error
        return str(answer["status"]["token"])
