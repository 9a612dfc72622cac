"""The web view: Starlette routes over the hub, Jinja2 pages, one SSE stream per page.

Read-only by construction: every route is GET (anything else gets 405), the database is read
through `FlowQueries`, which has no writes, and the cluster through watches. Pages are
rendered with autoescaping (flow messages are user data); rows, the flow's live section and
notifications arrive over server-sent events as HTML fragments that htmx swaps in place.
Security headers: a Host allow-list (400 for others, against DNS rebinding, as `kubectl
proxy` does) and `Content-Security-Policy: default-src 'self'`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collectionflow.db.errors import DatabaseUnavailable
from collectionflow.db.queries import FlowQueries, JournalRow
from collectionflow.ui.hub import FlowHub, Subscription
from collectionflow.ui.model import STATES, ago, input_command, newest_first, page_of, timeline

HERE = Path(__file__).parent
CSP = "default-src 'self'"
PING_SECONDS = 15


class SecurityHeaders:
    """Adds the Content-Security-Policy (and no-sniff) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


def create_app(
    hub: FlowHub,
    queries: FlowQueries,
    allowed_hosts: Iterable[str],
    on_close: Callable[[], Any] | None = None,
) -> Starlette:
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True)
    )

    templates.filters["ago"] = lambda value: ago(value, dt.datetime.now(dt.UTC))

    def render(name: str, **context: Any) -> str:
        return templates.get_template(name).render(**context)

    def filters(request: Request) -> tuple[str | None, str | None, int]:
        query = request.query_params
        page = query.get("page", "1")
        return (
            query.get("namespace") or None,
            query.get("state") or None,
            int(page) if page.isdigit() else 1,
        )

    def rows_html(request: Request) -> str:
        namespace, state, number = filters(request)
        page = page_of(list(hub.rows.values()), namespace, state, number)
        return render("rows.html", page=page)

    async def journal(uid: str) -> list[JournalRow] | str:
        try:
            return await queries.journal_entries(uid, 20)
        except DatabaseUnavailable as error:
            return f"database unavailable: {error}"

    async def live_html(body: dict[str, Any]) -> str:
        uid = body["metadata"]["uid"]
        return render(
            "live.html",
            flow=body,
            row=hub.rows[uid],
            attempts=timeline(body, dt.datetime.now(dt.UTC)),
            conditions=(body.get("status") or {}).get("conditions") or [],
            events=newest_first(hub.events.get(uid, [])),
            journal=await journal(uid),
            command=input_command(body),
        )

    async def index(request: Request) -> HTMLResponse:
        namespace, state, _ = filters(request)
        namespaces = sorted({row.namespace for row in hub.rows.values()})
        return HTMLResponse(
            render(
                "list.html",
                rows=rows_html(request),
                query=request.url.query,
                namespaces=namespaces,
                states=STATES,
                namespace=namespace or "",
                state=state or "",
                since=hub.last_note,
            )
        )

    async def rows(request: Request) -> HTMLResponse:
        return HTMLResponse(rows_html(request))

    async def flow(request: Request) -> Response:
        body = hub.by_name(request.path_params["namespace"], request.path_params["name"])
        if body is None:
            return PlainTextResponse("no such flow", status_code=404)
        return HTMLResponse(
            render("flow.html", flow=body, live=await live_html(body), since=hub.last_note)
        )

    async def stream(request: Request) -> EventSourceResponse:
        query = request.query_params
        since = int(query["since"]) if query.get("since", "").isdigit() else hub.last_note
        flow_uid = query.get("flow")
        namespace, state, number = filters(request)

        async def messages(subscription: Subscription) -> AsyncIterator[ServerSentEvent]:
            nonlocal since
            for number_, note in hub.notes_after(since):
                since = number_
                yield ServerSentEvent(render("note.html", note=note), event="note", id=str(since))
            while True:
                await subscription.wake.wait()
                subscription.wake.clear()
                changed, subscription.changed = subscription.changed, set()
                listing, subscription.listing_changed = subscription.listing_changed, False
                for number_, note in hub.notes_after(since):
                    since = number_
                    html = render("note.html", note=note)
                    yield ServerSentEvent(html, event="note", id=str(since))
                if flow_uid:
                    body = hub.bodies.get(flow_uid)
                    if flow_uid in changed and body is not None:
                        yield ServerSentEvent(await live_html(body), event="live")
                    continue
                if listing:
                    yield ServerSentEvent("", event="listing")
                    continue
                shown = page_of(list(hub.rows.values()), namespace, state, number).rows
                for row in shown:
                    if row.uid in changed:
                        html = render("row.html", row=row)
                        yield ServerSentEvent(html, event=f"row-{row.uid}")

        async def events() -> AsyncIterator[ServerSentEvent]:
            async with hub.subscribe() as subscription:
                async for message in messages(subscription):
                    yield message

        return EventSourceResponse(events(), ping=PING_SECONDS, headers={"X-Accel-Buffering": "no"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            await hub.stop()
            if on_close is not None:
                await on_close()

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/rows", rows, methods=["GET"]),
            Route("/flows/{namespace}/{name}", flow, methods=["GET"]),
            Route("/events", stream, methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
        ],
        lifespan=lifespan,
    )
