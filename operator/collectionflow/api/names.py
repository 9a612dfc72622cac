"""Deterministic names and labels of the objects a flow owns.

A Job's name is a function of flow, phase and attempt only. After a crash the operator
computes the same name again and finds the Job it already made instead of making another.
"""

from __future__ import annotations

import hashlib
import re

from collectionflow.api.models import GROUP

MAX_NAME = 63
_INVALID = re.compile(r"[^a-z0-9-]+")

LABEL_FLOW = f"{GROUP}/flow"
LABEL_FLOW_UID = f"{GROUP}/flow-uid"
LABEL_PHASE = f"{GROUP}/phase"
LABEL_ATTEMPT = f"{GROUP}/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "collectionflow-operator"

ANNOTATION_INPUT_COMPLETE = f"{GROUP}/input-complete"
ANNOTATION_INPUT = f"{GROUP}/input"
ANNOTATION_RETRY = f"{GROUP}/retry"


def _dns_label(text: str) -> str:
    return _INVALID.sub("-", text.lower()).strip("-")


def _fit(text: str, key: str, exact: bool = True) -> str:
    """`text` if it is a valid length (and `exact`), else its head plus a hash of `key`."""
    if exact and len(text) <= MAX_NAME:
        return text
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{text[: MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def job_name(flow_name: str, phase: str, attempt: int) -> str:
    """`<flow>-<phase>-<attempt>`, with a hash suffix when over 63 characters.

    A flow name with dots gets the suffix too: `a.b` and `a-b` may share a namespace, and
    both would otherwise map to the same Job name.
    """
    label = _dns_label(flow_name)
    full = f"{label}-{_dns_label(phase)}-{attempt}"
    return _fit(full, f"{flow_name}\0{phase}\0{attempt}", exact=label == flow_name)


def phase_label(phase: str) -> str:
    """The value of the phase label: the phase name as a DNS label (`gap-analysis`)."""
    return _dns_label(phase)


def phase_labels(flow_name: str, flow_uid: str, phase: str, attempt: int) -> dict[str, str]:
    return {
        LABEL_FLOW: _fit(flow_name, flow_name),
        LABEL_FLOW_UID: flow_uid,
        LABEL_PHASE: phase_label(phase),
        LABEL_ATTEMPT: str(attempt),
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def heartbeat_labels(flow_uid: str) -> dict[str, str]:
    """The labels of a phase's heartbeat Lease, whoever creates it: the operator watches Leases
    with the managed-by label only."""
    return {LABEL_FLOW_UID: flow_uid, LABEL_MANAGED_BY: MANAGED_BY}
