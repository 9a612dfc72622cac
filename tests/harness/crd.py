"""The CollectionFlow CRD installed into the test cluster, from `crds/` (its one source)."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / "collectionflow.yaml"


def install_crd(api_client: client.ApiClient, path: Path = CRD_PATH) -> None:
    """Install (or update) the CRD from crds/ (or `path`) and wait until it is served."""
    ext = client.ApiextensionsV1Api(api_client)
    manifest = yaml.safe_load(path.read_text())
    name = manifest["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(manifest)
    except ApiException as error:
        if error.status != 409:
            raise
        current = ext.read_custom_resource_definition(name)
        manifest["metadata"]["resourceVersion"] = api_client.sanitize_for_serialization(current)[
            "metadata"
        ]["resourceVersion"]
        ext.replace_custom_resource_definition(name, manifest)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = api_client.sanitize_for_serialization(ext.read_custom_resource_definition(name))
        conditions = crd.get("status", {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.2)
    raise AssertionError(f"CRD {name} not Established within 30s")
