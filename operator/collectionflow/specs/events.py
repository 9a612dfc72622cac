"""The core/v1 Events the operator posts, as `kubectl describe` and `kubectl get events` show
them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from collectionflow.api.reasons import EventReason

MAX_EVENT_MESSAGE = 1024


def event_manifest(
    namespace: str,
    name: str,
    uid: str,
    kind: str,
    api_version: str,
    type_: str,
    reason: EventReason,
    message: str,
    component: str,
    now: dt.datetime,
) -> dict[str, Any]:
    """An Event on the object `name` (of `kind`), named uniquely after it."""
    moment = now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "uid": uid,
        },
        "type": type_,
        "reason": reason.value,
        "message": message[:MAX_EVENT_MESSAGE],
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": moment,
        "lastTimestamp": moment,
        "count": 1,
    }
