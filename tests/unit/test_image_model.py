"""How the node agent runs a container from a locally built image: references, command line,
user, environment and mounts, as a container runtime decides them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.images.enter import inside
from harness.images.model import (
    ImageConfig,
    LocalImage,
    find_local_image,
    image_argv,
    image_env,
    read_only_root,
    run_as,
    split_reference,
    volume_mounts,
    working_dir,
)
from harness.nodeagent.model import ContainerConfigError

pytestmark = pytest.mark.unit

CONFIG = ImageConfig(
    entrypoint=("collectionflow",),
    cmd=("run",),
    env={"PATH": "/opt/venv/bin:/usr/bin", "LANG": "C.UTF-8"},
    working_dir="/tmp",
    user="65532:65532",
)
IMAGE = LocalImage("collectionflow-operator:0.1.0", Path("/rootfs"), CONFIG)


def test_oci_config_is_read_as_a_runtime_reads_it() -> None:
    config = ImageConfig.from_oci(
        {
            "Entrypoint": ["collectionflow"],
            "Cmd": ["run"],
            "Env": ["PATH=/opt/venv/bin:/usr/bin", "EMPTY=", "A=b=c"],
            "WorkingDir": "/tmp",
            "User": "65532:65532",
        }
    )
    assert config.entrypoint == ("collectionflow",)
    assert config.cmd == ("run",)
    assert config.env == {"PATH": "/opt/venv/bin:/usr/bin", "EMPTY": "", "A": "b=c"}
    assert (config.working_dir, config.user) == ("/tmp", "65532:65532")
    assert ImageConfig.from_oci({}) == ImageConfig()


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("collectionflow-operator", ("collectionflow-operator", "latest")),
        ("collectionflow-operator:0.1.0", ("collectionflow-operator", "0.1.0")),
        ("localhost:5000/app:1@sha256:ab", ("localhost:5000/app", "1")),
        ("localhost:5000/app", ("localhost:5000/app", "latest")),
    ],
)
def test_split_reference(reference: str, expected: tuple[str, str]) -> None:
    assert split_reference(reference) == expected


def test_a_local_image_runs_its_own_tag_under_any_registry_prefix_only() -> None:
    assert IMAGE.runs("collectionflow-operator:0.1.0")
    assert IMAGE.runs("localhost/collectionflow-operator:0.1.0")
    assert IMAGE.runs("ghcr.io/acme/collectionflow-operator:0.1.0")
    assert not IMAGE.runs("collectionflow-operator:0.2.0")
    assert not IMAGE.runs("collectionflow-operator")
    assert not IMAGE.runs("other:0.1.0")
    assert find_local_image("collectionflow-operator:venv", [IMAGE]) is None
    assert find_local_image("collectionflow-operator:0.1.0", [IMAGE]) is IMAGE


@pytest.mark.parametrize(
    ("container", "argv"),
    [
        ({}, ["collectionflow", "run"]),
        ({"args": ["worker"]}, ["collectionflow", "worker"]),
        ({"command": ["sh", "-c"], "args": ["true"]}, ["sh", "-c", "true"]),
        ({"command": ["echo"]}, ["echo"]),
        ({"command": ["echo", "$(NAME)"]}, ["echo", "flow"]),
    ],
)
def test_command_replaces_entrypoint_and_args_replace_cmd(
    container: dict[str, list[str]], argv: list[str]
) -> None:
    assert image_argv(container, CONFIG, {"NAME": "flow"}) == argv


def test_nothing_to_run_is_a_config_error() -> None:
    with pytest.raises(ContainerConfigError, match="no command"):
        image_argv({}, ImageConfig(), {})


PASSWD = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"


@pytest.mark.parametrize(
    ("pod_context", "container_context", "user", "ids"),
    [
        ({}, {}, "65532:65532", (65532, 65532)),
        ({}, {}, "65532", (65532, 65532)),
        ({}, {}, "app", (1000, 1001)),
        ({}, {}, "", (0, 0)),
        ({"runAsUser": 2000}, {}, "65532:65532", (2000, 2000)),
        ({"runAsUser": 2000, "runAsGroup": 3000}, {}, "", (2000, 3000)),
        ({"runAsUser": 2000}, {"runAsUser": 4000}, "", (4000, 4000)),
        ({"runAsNonRoot": True}, {}, "65532", (65532, 65532)),
    ],
)
def test_run_as_container_then_pod_then_image(
    pod_context: dict[str, object],
    container_context: dict[str, object],
    user: str,
    ids: tuple[int, int],
) -> None:
    pod = {"spec": {"securityContext": pod_context}}
    container = {"securityContext": container_context}
    assert run_as(pod, container, ImageConfig(user=user), PASSWD) == ids


def test_run_as_non_root_refuses_a_root_image_and_unknown_users_are_errors() -> None:
    pod = {"spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(ContainerConfigError, match="runAsNonRoot and image will run as root"):
        run_as(pod, {}, ImageConfig(), PASSWD)
    with pytest.raises(ContainerConfigError, match="unable to find user nobody"):
        run_as({}, {}, ImageConfig(user="nobody"), PASSWD)


def test_environment_working_dir_and_read_only_root() -> None:
    env = image_env(CONFIG, {"KUBERNETES_SERVICE_HOST": "127.0.0.1"}, "pod-1", {"LANG": "en"})
    assert env == {
        "PATH": "/opt/venv/bin:/usr/bin",
        "LANG": "en",
        "HOSTNAME": "pod-1",
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
    }
    assert working_dir({}, CONFIG) == "/tmp"
    assert working_dir({"workingDir": "/data"}, CONFIG) == "/data"
    assert working_dir({}, ImageConfig()) == "/"
    assert read_only_root({"securityContext": {"readOnlyRootFilesystem": True}})
    assert not read_only_root({})


def test_volume_mounts_shallowest_first_then_the_termination_message() -> None:
    container = {
        "volumeMounts": [
            {"name": "token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
            {"name": "tmp", "mountPath": "/tmp", "readOnly": False},
            {"name": "config", "mountPath": "/etc/app", "readOnly": True},
        ],
        "terminationMessagePath": "/tmp/result",
    }
    dirs = {name: Path(f"/pod/{name}") for name in ("token", "tmp", "config")}
    mounts = volume_mounts(container, dirs, Path("/pod/term"))
    assert [m.target for m in mounts] == [
        "/tmp",
        "/etc/app",
        "/var/run/secrets/kubernetes.io/serviceaccount",
        "/tmp/result",
    ]
    assert [m.readonly for m in mounts] == [False, True, False, False]
    assert mounts[-1].file
    assert mounts[-1].source == "/pod/term"
    default = volume_mounts({}, {}, Path("/pod/term"))
    assert [m.target for m in default] == ["/dev/termination-log"]


def test_a_mount_of_an_unsupported_volume_or_a_sub_path_is_a_config_error() -> None:
    with pytest.raises(ContainerConfigError, match="only emptyDir and secret"):
        volume_mounts({"volumeMounts": [{"name": "pvc", "mountPath": "/d"}]}, {}, Path("/t"))
    with pytest.raises(ContainerConfigError, match="subPath"):
        volume_mounts(
            {"volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "x"}]},
            {"v": Path("/v")},
            Path("/t"),
        )


def test_paths_resolve_inside_the_root_never_on_the_host(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")
    (root / "etc").mkdir()
    (root / "etc" / "escape").symlink_to("../../../../..")
    assert inside(str(root), "/var/run/secrets") == str(root / "run" / "secrets")
    assert inside(str(root), "/etc/escape/tmp") == str(root / "tmp")
    assert inside(str(root), "/../../etc") == str(root / "etc")
