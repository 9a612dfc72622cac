"""Turn a CollectionFlow object, as read from the API, into the state machine's `FlowView`.

The user's requests that are not spec (manual input given, a retry asked for) arrive as
annotations, because they are one-off actions rather than desired state.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from collectionflow.api.models import CollectionFlowSpec, CollectionFlowStatus, FlowState
from collectionflow.api.names import (
    ANNOTATION_INPUT,
    ANNOTATION_INPUT_COMPLETE,
    ANNOTATION_RETRY,
)
from collectionflow.domain.decision import FlowView
from collectionflow.domain.machine import at_rest


class UnreadableFlow(ValueError):
    """The object's spec does not parse; the message says where."""


def flow_view(body: dict[str, Any]) -> FlowView:
    meta = body["metadata"]
    annotations: dict[str, str] = meta.get("annotations") or {}
    try:
        spec = CollectionFlowSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise UnreadableFlow(f"invalid spec: {error}") from None
    try:
        status = CollectionFlowStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        raise UnreadableFlow(f"unreadable status: {error}") from None
    manual_input: dict[str, Any] | None = None
    raw_input = annotations.get(ANNOTATION_INPUT)
    if raw_input:
        try:
            parsed = json.loads(raw_input)
        except json.JSONDecodeError:
            parsed = None
        manual_input = parsed if isinstance(parsed, dict) else {"raw": raw_input}
    return FlowView(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        spec=spec,
        status=status,
        input_complete=annotations.get(ANNOTATION_INPUT_COMPLETE, "").lower() == "true",
        manual_input=manual_input,
        retry_request=annotations.get(ANNOTATION_RETRY) or None,
    )


def has_work(body: dict[str, Any]) -> bool:
    """Whether a flow object needs a reconciler: it is not at rest, or it cannot be read (the
    reconciler reports why). Called on every watch event of every flow, so a state that is
    never at rest answers without reading the rest of the status."""
    state = (body.get("status") or {}).get("state")
    if state not in (FlowState.SUCCEEDED, FlowState.FAILED):
        return True
    try:
        return not at_rest(flow_view(body))
    except UnreadableFlow:
        return True


def observed_state(body: dict[str, Any]) -> FlowState:
    """The state the object's status reports; Pending before the operator wrote any."""
    try:
        return FlowState((body.get("status") or {}).get("state") or FlowState.PENDING)
    except ValueError:
        return FlowState.PENDING
