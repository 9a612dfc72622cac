"""`collectionflow ui`: the read-only web view of the flows, served until interrupted."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ui(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to bind")] = 8000,
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="show only this namespace (repeatable)"),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            help="allow a non-loopback --host. The view then shows every flow it can read, with "
            "its messages, Events and failure journal, to anyone who reaches the port, without "
            "authentication: put it behind your own proxy and authentication."
        ),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="another Host header to accept (repeatable), e.g. a proxy's name"),
    ] = None,
) -> None:
    """Serve a live, read-only view of the flows in the browser (Ctrl-C stops it).

    It reads the cluster through your kubeconfig (or in-cluster credentials) and the failure
    journal through COLLECTIONFLOW_DB__URL (read-only). Reach it at http://127.0.0.1:PORT/, or
    in a cluster with `kubectl port-forward`.
    """
    if not _is_loopback(host) and not allow_remote:
        raise typer.BadParameter(
            f"{host} is not a loopback address; the view has no authentication. Pass "
            "--allow-remote to expose it anyway",
            param_hint="--host",
        )
    import uvicorn

    from collectionflow.ui.server import build

    allowed = sorted(LOOPBACK_NAMES | {"[::1]", host, *(allow_host or [])})
    typer.echo(f"the web view: http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(build(namespace or [], allowed), host=host, port=port, log_level="info")
