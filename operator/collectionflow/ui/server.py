"""Wiring of the web view: the cluster client, the read-only database queries, the app."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from starlette.applications import Starlette

from collectionflow.db.engine import make_engine, make_sessionmaker
from collectionflow.db.queries import FlowQueries
from collectionflow.k8s.gateway import load_api_client
from collectionflow.settings import get_settings
from collectionflow.ui.app import create_app
from collectionflow.ui.hub import FlowHub


def build(namespaces: Sequence[str], allowed_hosts: Iterable[str]) -> Any:
    """An ASGI app that connects to the cluster and the database when it starts: the flows of
    `namespaces` (every one when empty), and the journal in read-only transactions."""
    engine = make_engine(get_settings().db, read_only=True)
    queries = FlowQueries(make_sessionmaker(engine))
    state: dict[str, Starlette] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if "app" not in state:
            api_client = await load_api_client()

            async def close() -> None:
                await api_client.close()
                await engine.dispose()

            hub = FlowHub(api_client, namespaces)
            state["app"] = create_app(hub, queries, allowed_hosts, on_close=close)
        await state["app"](scope, receive, send)

    return app
