"""List-then-watch of one resource, as an informer does it: a re-list after 410 Gone or any
broken watch, and every object of a re-list handed on again (so a reader replaces its copy).

Used by the controller for flows, phase Jobs, their pods and heartbeat Leases, and by the
read-only web view, which keeps one watch of flows and one of their Events for all its
browsers. Lines are parsed with orjson, several times faster than the standard library on the
large objects a watch carries; an object nested deeper than orjson decodes has its deepest
parts cut (`api.limits.decode_wire`), so one such object never breaks the watch of all the
others. I/O only: what the events mean is the reader's business.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.limits import decode_wire

log = logging.getLogger(__name__)

Lister = Callable[..., Awaitable[Any]]
LISTED, SYNCED = "LISTED", "SYNCED"


@dataclass(frozen=True)
class WatchEvent:
    """ADDED, MODIFIED or DELETED, or LISTED for every object of a (re-)list, then SYNCED."""

    type: str
    body: dict[str, Any]


async def list_and_watch(
    lister: Lister, *args: Any, retry_seconds: float = 2.0, **kwargs: Any
) -> AsyncIterator[WatchEvent]:
    """Events of `lister` (a kubernetes_asyncio list call) forever: a list, then a watch from
    its resourceVersion; after an error or 410 Gone, a new list."""
    while True:
        try:
            listing = await _json(await lister(*args, _preload_content=False, **kwargs))
            for item in listing.get("items") or []:
                yield WatchEvent(LISTED, item)
            yield WatchEvent(SYNCED, {})
            version = listing["metadata"]["resourceVersion"]
            async for event in _watch(lister, version, *args, **kwargs):
                yield event
        except (ApiException, aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("watch of %s broke (%s); re-listing", _name(lister), error)
        await asyncio.sleep(retry_seconds)


async def follow(
    lister: Lister,
    args: tuple[str, ...],
    selectors: dict[str, Any],
    take: Callable[[WatchEvent], None],
    skipped: Callable[[WatchEvent], None],
) -> None:
    """Hand each event of `lister` on to `take`, forever; one that cannot be taken is logged,
    handed to `skipped`, and the watch goes on with the next: no single object stops the
    watch of all the others."""
    async for event in list_and_watch(lister, *args, **selectors):
        try:
            take(event)
        except Exception:
            meta = event.body.get("metadata") if isinstance(event.body, dict) else None
            where = f"{(meta or {}).get('namespace')}/{(meta or {}).get('name')}"
            log.exception("skipped a %s event of %s that could not be taken", event.type, where)
            skipped(event)


async def _watch(
    lister: Lister, version: str, *args: Any, **kwargs: Any
) -> AsyncIterator[WatchEvent]:
    while True:
        response = await lister(
            *args,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=300,
            _preload_content=False,
            _request_timeout=330,
            **kwargs,
        )
        async with response:
            _check(response)
            async for line in response.content:
                if not line.strip():
                    continue
                event = decode_wire(line)
                body = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if body.get("code") == 410:
                        log.info("watch of %s: 410 Gone; re-listing", _name(lister))
                        return
                    raise ValueError(f"watch error: {body.get('message')}")
                version = (body.get("metadata") or {}).get("resourceVersion", version)
                if event.get("type") != "BOOKMARK":
                    yield WatchEvent(str(event.get("type")), body)


async def _json(response: Any) -> dict[str, Any]:
    try:
        _check(response)
        data: dict[str, Any] = decode_wire(await response.read())
    finally:
        response.release()
    return data


def _check(response: Any) -> None:
    if not 200 <= response.status <= 299:
        raise ApiException(status=response.status, reason=response.reason)


def _name(lister: Lister) -> str:
    return getattr(lister, "__name__", "objects")
