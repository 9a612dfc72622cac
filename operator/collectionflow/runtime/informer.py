"""List-then-watch of one resource, as an informer does it: a re-list after 410 Gone or any
broken watch, and every object of a re-list handed on again (so a reader replaces its copy).
Lists are read in pages (`limit` and `continue`), so that 50,000 stored objects are never one
response; and the watch is left for a new list every `relist_seconds` (by default ten
minutes): the safety net against a watch that missed an event, at one LIST per watch, not one
GET per object. Each watch request lasts at most `WATCH_REQUEST_SECONDS` (a minute) and the
next resumes from the last resourceVersion (no list): that answered request is a sign of life
on a quiet but healthy watch, so the watches' age (`heard`) stays under a minute at rest, for
one request a minute per watch.

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
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from collectionflow.api.limits import decode_wire

log = logging.getLogger(__name__)

Lister = Callable[..., Awaitable[Any]]
LISTED, SYNCED = "LISTED", "SYNCED"
PAGE_SIZE = 500
RELIST_SECONDS = 600.0
WATCH_REQUEST_SECONDS = 60


@dataclass(frozen=True)
class WatchEvent:
    """ADDED, MODIFIED or DELETED, or LISTED for every object of a (re-)list, then SYNCED."""

    type: str
    body: dict[str, Any]


async def list_and_watch(
    lister: Lister,
    *args: Any,
    retry_seconds: float = 2.0,
    relist_seconds: float = RELIST_SECONDS,
    page_size: int = PAGE_SIZE,
    heard: Callable[[], None] = lambda: None,
    **kwargs: Any,
) -> AsyncIterator[WatchEvent]:
    """Events of `lister` (a kubernetes_asyncio list call) forever: a list in pages of
    `page_size`, then a watch from its resourceVersion until `relist_seconds` have passed;
    after that, an error or 410 Gone, a new list. `heard` is called on every sign of life of
    the apiserver: a page, a watch request answered, an event or a bookmark."""
    while True:
        try:
            listed_at = time.monotonic()
            version = ""
            async for event in _list(lister, page_size, heard, *args, **kwargs):
                if event.type == SYNCED:
                    version = event.body["resourceVersion"]
                    event = WatchEvent(SYNCED, {})
                yield event
            deadline = listed_at + relist_seconds
            async for event in _watch(lister, version, deadline, heard, *args, **kwargs):
                yield event
            continue  # time for the safety net's re-list, or 410 Gone
        except (ApiException, aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("watch of %s broke (%s); re-listing", _name(lister), error)
        await asyncio.sleep(retry_seconds)


async def _list(
    lister: Lister, page_size: int, heard: Callable[[], None], *args: Any, **kwargs: Any
) -> AsyncIterator[WatchEvent]:
    """Every object, page by page, then SYNCED carrying the list's resourceVersion (that of
    the first page: the pages of one list are one snapshot)."""
    token: str | None = None
    version = None
    while True:
        more = {"_continue": token} if token else {}
        listing = await _json(
            await lister(*args, limit=page_size, _preload_content=False, **more, **kwargs)
        )
        heard()
        for item in listing.get("items") or []:
            yield WatchEvent(LISTED, item)
        metadata = listing.get("metadata") or {}
        version = version or metadata["resourceVersion"]
        token = metadata.get("continue")
        if not token:
            yield WatchEvent(SYNCED, {"resourceVersion": version})
            return


async def follow(
    lister: Lister,
    args: tuple[str, ...],
    selectors: dict[str, Any],
    take: Callable[[WatchEvent], None],
    skipped: Callable[[WatchEvent], None],
    relist_seconds: float = RELIST_SECONDS,
    heard: Callable[[], None] = lambda: None,
) -> None:
    """Hand each event of `lister` on to `take`, forever; one that cannot be taken is logged,
    handed to `skipped`, and the watch goes on with the next: no single object stops the
    watch of all the others."""
    events = list_and_watch(lister, *args, relist_seconds=relist_seconds, heard=heard, **selectors)
    async for event in events:
        try:
            take(event)
        except Exception:
            meta = event.body.get("metadata") if isinstance(event.body, dict) else None
            where = f"{(meta or {}).get('namespace')}/{(meta or {}).get('name')}"
            log.exception("skipped a %s event of %s that could not be taken", event.type, where)
            skipped(event)


async def _watch(
    lister: Lister,
    version: str,
    deadline: float,
    heard: Callable[[], None],
    *args: Any,
    **kwargs: Any,
) -> AsyncIterator[WatchEvent]:
    """The watch from `version`, in requests of at most a minute, until the monotonic
    `deadline` (then the caller lists again) or 410 Gone."""
    while (left := deadline - time.monotonic()) > 0:
        response = await lister(
            *args,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, min(WATCH_REQUEST_SECONDS, round(left))),
            _preload_content=False,
            _request_timeout=WATCH_REQUEST_SECONDS + 30,
            **kwargs,
        )
        async with response:
            _check(response)
            heard()
            async for line in response.content:
                if not line.strip():
                    continue
                heard()
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
