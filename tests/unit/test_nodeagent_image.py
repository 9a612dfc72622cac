"""Which images the local node agent runs, and with which command line."""

from __future__ import annotations

import pytest

from harness.nodeagent.__main__ import parse_image_option
from harness.nodeagent.model import (
    ContainerConfigError,
    ImageMatch,
    container_argv,
    image_lookup_keys,
    image_repository,
    match_image,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("collectionflow-operator", "collectionflow-operator"),
        ("collectionflow-operator:0.1.0", "collectionflow-operator"),
        ("ghcr.io/acme/collectionflow-operator:0.1.0", "ghcr.io/acme/collectionflow-operator"),
        ("ghcr.io/acme/collectionflow-operator@sha256:abc", "ghcr.io/acme/collectionflow-operator"),
        ("localhost:5000/app:1@sha256:abc", "localhost:5000/app"),
        ("localhost:5000/app", "localhost:5000/app"),
        ("", ""),
    ],
)
def test_image_repository_strips_tag_and_digest_but_not_the_registry_port(
    image: str, repository: str
) -> None:
    assert image_repository(image) == repository


@pytest.mark.parametrize(
    ("image", "keys"),
    [
        ("app:1", ["app"]),
        ("acme/app:1", ["acme/app", "app"]),
        ("ghcr.io/acme/app:1", ["ghcr.io/acme/app", "acme/app", "app"]),
        ("localhost:5000/app", ["localhost:5000/app", "app"]),
        ("localhost/team/app", ["localhost/team/app", "team/app", "app"]),
        ("", []),
    ],
)
def test_lookup_keys_go_from_full_repository_to_last_component(image: str, keys: list[str]) -> None:
    assert image_lookup_keys(image) == keys


def test_match_image_by_last_component_whatever_registry_and_tag() -> None:
    image_map: dict[str, list[str] | None] = {"collectionflow-operator": None}

    for image in (
        "collectionflow-operator",
        "collectionflow-operator:latest",
        "ghcr.io/acme/collectionflow-operator:0.1.0",
        "registry.local:5000/x/y/collectionflow-operator@sha256:0123",
    ):
        assert match_image(image, image_map) == ImageMatch("collectionflow-operator", None)


def test_match_image_prefers_the_most_specific_key() -> None:
    image_map = {
        "app": ["generic"],
        "acme/app": ["acme"],
        "ghcr.io/acme/app": ["exact"],
    }

    assert match_image("ghcr.io/acme/app:1", image_map) == ImageMatch(
        "ghcr.io/acme/app", ("exact",)
    )
    assert match_image("quay.io/acme/app:1", image_map) == ImageMatch("acme/app", ("acme",))
    assert match_image("quay.io/other/app", image_map) == ImageMatch("app", ("generic",))


@pytest.mark.parametrize(
    "image",
    ["busybox", "docker.io/library/busybox:1.36", "collectionflow-operator-extra", "operator", ""],
)
def test_other_images_do_not_match(image: str) -> None:
    assert match_image(image, {"collectionflow-operator": None}) is None


def test_a_repository_key_does_not_match_another_owner() -> None:
    assert match_image("ghcr.io/other/app", {"acme/app": None}) is None


def test_argv_is_command_then_args_with_variables_expanded() -> None:
    container = {"command": ["collectionflow", "worker"], "args": ["--phase", "$(PHASE)", "$$(X)"]}

    assert container_argv(container, None, {"PHASE": "init"}) == [
        "collectionflow",
        "worker",
        "--phase",
        "init",
        "$(X)",
    ]


def test_entrypoint_prefixes_the_command() -> None:
    container = {"command": ["worker"], "args": ["-v"]}

    assert container_argv(container, ("python", "-m", "cli"), {}) == [
        "python",
        "-m",
        "cli",
        "worker",
        "-v",
    ]


def test_without_command_the_entrypoint_is_the_command() -> None:
    assert container_argv({"args": ["run"]}, ("collectionflow",), {}) == ["collectionflow", "run"]


@pytest.mark.parametrize("entrypoint", [None, ()])
def test_without_command_and_entrypoint_there_is_nothing_to_run(
    entrypoint: tuple[str, ...] | None,
) -> None:
    with pytest.raises(ContainerConfigError, match="no command"):
        container_argv({"args": ["run"]}, entrypoint, {})


@pytest.mark.parametrize(
    ("option", "parsed"),
    [
        ("collectionflow-operator", ("collectionflow-operator", None)),
        ("ghcr.io/acme/app=python -m app", ("ghcr.io/acme/app", ("python", "-m", "app"))),
        ("app='/opt/my tool' --flag", ("app", ("/opt/my tool", "--flag"))),
        ("app=", ("app", ())),
    ],
)
def test_image_option_of_the_command_line(
    option: str, parsed: tuple[str, tuple[str, ...] | None]
) -> None:
    assert parse_image_option(option) == parsed


def test_image_option_needs_a_name() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse_image_option("=python")


def test_a_tagged_key_matches_that_tag_only() -> None:
    image_map: dict[str, list[str] | None] = {"collectionflow-operator:venv": None}

    assert match_image("collectionflow-operator:venv", image_map) == ImageMatch(
        "collectionflow-operator:venv", None
    )
    assert match_image("ghcr.io/acme/collectionflow-operator:venv", image_map) is not None
    assert match_image("collectionflow-operator:0.1.0", image_map) is None
    assert match_image("collectionflow-operator", image_map) is None
