"""One shared watch of flows and their Events, fanned out to every browser.

The hub lists and watches flows and the Events on them once (re-listing after 410 Gone), keeps
the latest body of each flow and its recent Events, and tells each subscriber which flows
changed. A subscriber holds a set of changed flows, so rapid changes to one flow merge into
one update; the stream renders the flow as it is when it gets there. Notifications are kept in
a numbered ring, so a page can ask for those after the number it was rendered with.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio import client

from collectionflow.api.models import GROUP, KIND, PLURAL, VERSION
from collectionflow.runtime.informer import LISTED, SYNCED, WatchEvent, list_and_watch
from collectionflow.ui.model import FlowRow, Note, flow_row, note_for_change, note_for_event

log = logging.getLogger(__name__)

RECENT_EVENTS = 20
KEPT_NOTES = 200


@dataclass(eq=False)
class Subscription:
    changed: set[str] = field(default_factory=set)
    listing_changed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class FlowHub:
    def __init__(self, api_client: client.ApiClient, namespaces: Sequence[str] = ()) -> None:
        self.api_client = api_client
        self.namespaces = tuple(namespaces)  # empty: every namespace
        self.bodies: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, FlowRow] = {}
        self.events: dict[str, collections.deque[dict[str, Any]]] = {}
        self.notes: collections.deque[tuple[int, Note]] = collections.deque(maxlen=KEPT_NOTES)
        self.synced = asyncio.Event()
        self._numbers = itertools.count(1)
        self._subscriptions: set[Subscription] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._synced_scopes: set[str | None] = set()

    # -- what pages read

    def by_name(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next(
            (
                body
                for body in self.bodies.values()
                if body["metadata"]["namespace"] == namespace and body["metadata"]["name"] == name
            ),
            None,
        )

    @property
    def last_note(self) -> int:
        return self.notes[-1][0] if self.notes else 0

    def notes_after(self, number: int) -> list[tuple[int, Note]]:
        return [(n, note) for n, note in self.notes if n > number]

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        subscription = Subscription()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    # -- the watches

    def start(self) -> None:
        """One watch of flows and one of their Events per namespace (or one of each for the
        whole cluster): in namespaced mode the view needs, and holds, no cluster-wide right."""
        custom, core = client.CustomObjectsApi(self.api_client), client.CoreV1Api(self.api_client)
        involved = f"involvedObject.kind={KIND}"
        for scope in self.namespaces or (None,):
            on_flow = functools.partial(self._on_flow, scope=scope)
            if scope:
                flows = self._follow(
                    on_flow, custom.list_namespaced_custom_object, GROUP, VERSION, scope, PLURAL
                )
                events = self._follow(
                    self._on_event, core.list_namespaced_event, scope, field_selector=involved
                )
            else:
                flows = self._follow(
                    on_flow, custom.list_cluster_custom_object, GROUP, VERSION, PLURAL
                )
                events = self._follow(
                    self._on_event, core.list_event_for_all_namespaces, field_selector=involved
                )
            self._tasks += [asyncio.create_task(flows), asyncio.create_task(events)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _follow(
        self, handle: Callable[[WatchEvent, set[str]], None], lister: Any, *args: Any, **kw: Any
    ) -> None:
        listed: set[str] = set()
        async for event in list_and_watch(lister, *args, **kw):
            handle(event, listed)

    def _on_flow(self, event: WatchEvent, listed: set[str], scope: str | None = None) -> None:
        if event.type == SYNCED:
            held = {
                uid
                for uid, body in self.bodies.items()
                if scope is None or body["metadata"]["namespace"] == scope
            }
            for uid in held - listed:
                self._forget(uid)
            listed.clear()
            self._synced_scopes.add(scope)
            if len(self._synced_scopes) == len(self.namespaces or (None,)):
                self.synced.set()
            return
        uid = str(event.body["metadata"]["uid"])
        if event.type == "DELETED":
            self._forget(uid)
            return
        if event.type == LISTED:
            listed.add(uid)
        before = self.rows.get(uid)
        row = flow_row(event.body)
        self.bodies[uid], self.rows[uid] = event.body, row
        if before is None or before.created != row.created:
            self._announce(uid, listing=True)
        elif before != row or event.type == "MODIFIED":
            self._announce(uid)
        if self.synced.is_set():
            self._note(note_for_change(before, row, event.body))

    def _forget(self, uid: str) -> None:
        self.bodies.pop(uid, None)
        self.rows.pop(uid, None)
        self.events.pop(uid, None)
        self._announce(uid, listing=True)

    def _on_event(self, event: WatchEvent, listed: set[str]) -> None:
        if event.type in (SYNCED, "DELETED"):
            return
        uid = str((event.body.get("involvedObject") or {}).get("uid") or "")
        recent = self.events.setdefault(uid, collections.deque(maxlen=RECENT_EVENTS))
        name = event.body["metadata"]["name"]
        kept = [e for e in recent if e["metadata"]["name"] != name]
        recent.clear()
        recent.extend([*kept, event.body])
        self._announce(uid)
        if event.type != LISTED:
            self._note(note_for_event(event.body))

    def _note(self, note: Note | None) -> None:
        if note is None or any(kept.key == note.key for _, kept in self.notes):
            return
        self.notes.append((next(self._numbers), note))
        for subscription in self._subscriptions:
            subscription.wake.set()

    def _announce(self, uid: str, listing: bool = False) -> None:
        for subscription in self._subscriptions:
            subscription.changed.add(uid)
            subscription.listing_changed |= listing
            subscription.wake.set()
