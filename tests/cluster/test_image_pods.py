"""Pods of the built image run from the image's own filesystem, as on a real node.

What a container runtime gives a pod is checked from inside: the image's user and entrypoint,
a read-only root with a writable emptyDir, the ServiceAccount at the in-cluster path (so
`load_incluster_config()` works), and the termination message at its standard path.
"""

from __future__ import annotations

import textwrap

import pytest

from harness.cluster import OPERATOR_IMAGE
from harness.nodeagent.agent import NodeAgent
from harness.pods import Pods, pod_manifest
from harness.waiting import wait_for

pytestmark = pytest.mark.cluster

PROBE = textwrap.dedent(
    """
    import os, pathlib
    from kubernetes import client, config
    config.load_incluster_config()
    version = client.VersionApi().get_code().git_version
    pathlib.Path("/tmp/scratch").write_text("ok")
    try:
        pathlib.Path("/opt/venv/x").write_text("no")
        root = "writable"
    except OSError as error:
        root = error.strerror
    print(f"uid={os.getuid()} gid={os.getgid()} cwd={os.getcwd()} apiserver={version} root={root}")
    pathlib.Path("/dev/termination-log").write_text("probe done")
    """
)


PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff")


def waiting_state(pods: Pods, name: str) -> dict[str, str]:
    state: dict[str, str] = pods.container(name).get("state", {}).get("waiting", {})
    return state


def restricted(container: dict[str, object]) -> dict[str, object]:
    return {
        **container,
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def test_a_pod_of_the_image_runs_from_its_filesystem_as_its_user(
    pods: Pods, node_agent: NodeAgent
) -> None:
    container = restricted(
        {"name": "main", "image": OPERATOR_IMAGE, "command": ["python", "-c", PROBE]}
    )
    pods.create(
        pod_manifest(
            "probe",
            [container],
            securityContext={"runAsNonRoot": True},
            volumes=[{"name": "tmp", "emptyDir": {}}],
        )
    )

    pods.wait_phase("probe", "Succeeded", timeout=60)

    log = node_agent.container_log(pods.namespace, "probe", "main")
    assert "uid=65532 gid=65532 cwd=/tmp apiserver=v1.20" in log, log
    assert "root=Read-only file system" in log, log
    terminated = pods.container("probe")["state"]["terminated"]
    assert terminated["message"] == "probe done"
    assert terminated["exitCode"] == 0


def test_the_image_entrypoint_and_cmd_run_when_the_pod_names_no_command(
    pods: Pods, node_agent: NodeAgent
) -> None:
    pods.create(
        pod_manifest("help", [{"name": "main", "image": OPERATOR_IMAGE, "args": ["--help"]}])
    )

    pods.wait_phase("help", "Succeeded", timeout=60)

    assert "Usage: collectionflow" in node_agent.container_log(pods.namespace, "help", "main")


def test_an_image_that_is_not_built_cannot_be_pulled(pods: Pods, node_agent: NodeAgent) -> None:
    pods.create(
        pod_manifest("absent", [{"name": "main", "image": "collectionflow-operator:9.9.9"}])
    )

    reason = wait_for(
        lambda: (
            waiting_state(pods, "absent").get("reason") in PULL_ERRORS
            and waiting_state(pods, "absent")["reason"]
        ),
        "ErrImagePull",
    )

    assert reason in PULL_ERRORS
    assert pods.status("absent")["phase"] == "Pending"


def test_run_as_non_root_refuses_root_and_the_command_must_exist_in_the_image(
    pods: Pods, node_agent: NodeAgent
) -> None:
    root = {"name": "main", "image": OPERATOR_IMAGE, "securityContext": {"runAsUser": 0}}
    pods.create(pod_manifest("as-root", [root], securityContext={"runAsNonRoot": True}))
    missing = {"name": "main", "image": OPERATOR_IMAGE, "command": ["no-such-binary"]}
    pods.create(pod_manifest("missing", [missing]))

    message = wait_for(
        lambda: waiting_state(pods, "as-root").get("message"),
        "CreateContainerConfigError of as-root",
    )
    assert message == "container has runAsNonRoot and image will run as root"
    pods.wait_phase("missing", "Failed", timeout=30)
    terminated = pods.container("missing")["state"]["terminated"]
    assert terminated["reason"] == "StartError"
    assert 'exec: "no-such-binary": executable file not found in $PATH' in terminated["message"]
