"""Turn a CollectionFlow object, as read from the API, into the state machine's `FlowView`.

The user's requests that are not spec (manual input given, a retry asked for) arrive as
annotations, because they are one-off actions rather than desired state.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError

from collectionflow.api.limits import MANUAL_INPUT, MAX_ANNOTATION_TOKEN, InputRejected
from collectionflow.api.models import CollectionFlowSpec, CollectionFlowStatus, FlowState
from collectionflow.api.names import (
    ANNOTATION_INPUT,
    ANNOTATION_INPUT_COMPLETE,
    ANNOTATION_RETRY,
)
from collectionflow.domain.decision import FlowView
from collectionflow.domain.machine import at_rest
from collectionflow.domain.slim import FLOW_ANNOTATIONS


class UnreadableFlow(ValueError):
    """The object's spec does not parse; the message says where."""


def flow_view(body: dict[str, Any], allow_simulation: bool = False) -> FlowView:
    """The state machine's view of a flow object. A spec that does not parse and an input
    annotation over its limits are part of the view (the machine fails the flow, or refuses the
    input, saying why); only a status that does not parse is `UnreadableFlow`."""
    meta = body["metadata"]
    annotations: dict[str, str] = meta.get("annotations") or {}
    spec_error = None
    try:
        spec = CollectionFlowSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        spec, spec_error = CollectionFlowSpec(), f"invalid spec: {_problems(error)}"
    try:
        status = CollectionFlowStatus.model_validate(body.get("status") or {})
    except ValidationError as error:
        raise UnreadableFlow(f"unreadable status: {_problems(error)}") from None
    manual_input: dict[str, Any] | None = None
    input_error = None
    raw_input = annotations.get(ANNOTATION_INPUT)
    if raw_input:
        try:
            manual_input = MANUAL_INPUT.parse_object(raw_input)
        except InputRejected as error:
            input_error = str(error)
    return FlowView(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        generation=int(meta.get("generation") or 0),
        spec=spec,
        status=status,
        input_complete=annotations.get(ANNOTATION_INPUT_COMPLETE, "").lower() == "true",
        manual_input=manual_input,
        input_error=input_error,
        retry_request=retry_token(annotations.get(ANNOTATION_RETRY)),
        spec_error=spec_error,
        allow_simulation=allow_simulation,
    )


def retry_token(value: str | None) -> str | None:
    """The retry annotation as the token the status records: as written when short, else a
    digest of it (the status never carries an annotation's full 256 KiB)."""
    if not value:
        return None
    if len(value) <= MAX_ANNOTATION_TOKEN:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _problems(error: ValidationError) -> str:
    """The first few problems of a validation error, each with where it is: short enough for
    a status message, whatever the object holds."""
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'spec'}: {e['msg']}"[:300]
        for e in error.errors()[:5]
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


def waits_quietly(body: dict[str, Any]) -> bool:
    """A flow that waits for its user with nothing to act on: waiting for input or suspended,
    its status written for its current generation and its database rows made, and none of our
    annotations (input, retry) on it. It needs no reconciler task, so 10,000 such flows cost
    no memory for one: any change that could move it (an annotation, a spec change, a status
    someone else wrote) comes as a watch event, which starts a task, and the stall sweep
    reminds it of its input."""
    status = body.get("status") or {}
    if status.get("state") not in (FlowState.WAITING_FOR_INPUT, FlowState.SUSPENDED):
        return False
    meta = body.get("metadata") or {}
    if any(name in (meta.get("annotations") or {}) for name in FLOW_ANNOTATIONS):
        return False
    written = status.get("observedGeneration") == meta.get("generation")
    return written and bool(status.get("masterFlowId"))


def observed_state(body: dict[str, Any]) -> FlowState:
    """The state the object's status reports; Pending before the operator wrote any."""
    try:
        return FlowState((body.get("status") or {}).get("state") or FlowState.PENDING)
    except ValueError:
        return FlowState.PENDING
