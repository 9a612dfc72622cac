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


def _fit(text: str, key: str) -> str:
    """`text` if it is a valid length, else its head plus a hash of `key`."""
    if len(text) <= MAX_NAME:
        return text
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return f"{text[: MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def job_name(flow_name: str, phase: str, attempt: int) -> str:
    """`<flow>-<phase>-<attempt>`, shortened with a hash suffix when over 63 characters."""
    full = f"{_dns_label(flow_name)}-{_dns_label(phase)}-{attempt}"
    return _fit(full, f"{flow_name}\0{phase}\0{attempt}")


def phase_labels(flow_name: str, flow_uid: str, phase: str, attempt: int) -> dict[str, str]:
    return {
        LABEL_FLOW: _fit(flow_name, flow_name),
        LABEL_FLOW_UID: flow_uid,
        LABEL_PHASE: _dns_label(phase),
        LABEL_ATTEMPT: str(attempt),
        LABEL_MANAGED_BY: MANAGED_BY,
    }
