"""Job names are deterministic DNS-1123 labels, unique per flow, phase and attempt."""

from __future__ import annotations

import itertools
import re

import pytest

from collectionflow.api.names import (
    LABEL_ATTEMPT,
    LABEL_FLOW,
    LABEL_FLOW_UID,
    LABEL_MANAGED_BY,
    LABEL_PHASE,
    job_name,
    phase_labels,
)
from collectionflow.domain.registry import COLLECTION

pytestmark = pytest.mark.unit

DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
UID = "6f1f2c84-9a53-4c1e-8d1e-3b8f0f4a9c21"

# Kubernetes object names are DNS-1123 subdomains: up to 253 characters, dots allowed.
FLOW_NAMES = [
    "demo",
    "a",
    "flow.with.dots",
    "x" * 40,
    "x" * 63,
    "long-" * 50 + "end",
    "a" * 253,
    ("abc." * 63)[:253].rstrip("."),
]


def assert_valid_label(name: str) -> None:
    assert len(name) <= 63, name
    assert DNS_1123_LABEL.match(name), name


def test_short_name_reads_as_flow_phase_attempt() -> None:
    assert job_name("demo", "initialization", 1) == "demo-initialization-1"


def test_underscores_and_dots_are_mapped() -> None:
    assert job_name("demo", "manual_collection", 2).startswith("demo-manual-collection-")
    assert job_name("my.flow", "gap_analysis", 1).startswith("my-flow-gap-analysis-")


@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_names_are_valid_and_deterministic(flow: str) -> None:
    for phase, attempt in itertools.product(COLLECTION.phase_names, (1, 2, 10, 123)):
        name = job_name(flow, phase, attempt)
        assert_valid_label(name)
        assert job_name(flow, phase, attempt) == name


@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_names_are_distinct_per_phase_and_attempt(flow: str) -> None:
    """Even when truncation cuts off the phase and attempt, the hash keeps names apart."""
    keys = list(itertools.product(COLLECTION.phase_names, range(1, 12)))
    names = {job_name(flow, phase, attempt) for phase, attempt in keys}
    assert len(names) == len(keys)


def test_long_names_are_truncated_with_a_hash_suffix() -> None:
    flow = "x" * 100
    first, second = job_name(flow, "synthesis", 1), job_name(flow, "synthesis", 2)
    assert len(first) == len(second) == 63
    assert first[:52] == second[:52] == "x" * 52
    assert first[-11] == "-"
    assert re.fullmatch(r"[0-9a-f]{10}", first[-10:])
    assert first != second


def test_flows_whose_names_map_alike_get_distinct_job_names() -> None:
    """`a.b` and `a-b` can live in one namespace; they must not share a Job."""
    assert job_name("a.b", "initialization", 1) != job_name("a-b", "initialization", 1)
    assert job_name("a-b", "initialization", 1) == "a-b-initialization-1"


def test_distinct_flows_never_share_a_job_name() -> None:
    names = [job_name(flow, "synthesis", 1) for flow in FLOW_NAMES]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("flow", FLOW_NAMES)
def test_phase_labels(flow: str) -> None:
    labels = phase_labels(flow, UID, "manual_collection", 3)
    assert set(labels) == {LABEL_FLOW, LABEL_FLOW_UID, LABEL_PHASE, LABEL_ATTEMPT, LABEL_MANAGED_BY}
    assert labels[LABEL_FLOW_UID] == UID
    assert labels[LABEL_PHASE] == "manual-collection"
    assert labels[LABEL_ATTEMPT] == "3"
    assert labels[LABEL_MANAGED_BY] == "collectionflow-operator"
    if len(flow) <= 63:
        assert labels[LABEL_FLOW] == flow
    for value in labels.values():
        assert len(value) <= 63, value
        assert LABEL_VALUE.match(value), value


def test_label_keys() -> None:
    assert (LABEL_FLOW, LABEL_FLOW_UID, LABEL_PHASE, LABEL_ATTEMPT, LABEL_MANAGED_BY) == (
        "flows.collectionflow.io/flow",
        "flows.collectionflow.io/flow-uid",
        "flows.collectionflow.io/phase",
        "flows.collectionflow.io/attempt",
        "app.kubernetes.io/managed-by",
    )
