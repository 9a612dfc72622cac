"""Kubernetes' own wire formats, for any object: nothing of flows."""

from __future__ import annotations

import datetime as dt


def micro_time(moment: dt.datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds and a `Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
