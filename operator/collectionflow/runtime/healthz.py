"""The probes' and the scrape's endpoints: `/healthz` on the health port (200 while the process
is healthy, 503 once it is not: the kubelet restarts it) and `/metrics` on the metrics port,
each only on its own, so that a NetworkPolicy can open the probe's port to the kubelet and the
metrics' port to Prometheus alone."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


async def serve(
    health_port: int,
    metrics_port: int,
    healthy: Callable[[], bool],
    metrics: Callable[[], tuple[bytes, str]],
) -> list[web.AppRunner]:
    """Serve `/healthz` on `health_port` and `/metrics` on `metrics_port` (`metrics()` gives
    the body and its content type); a port of 0 serves nothing, one port may serve both.

    The sockets are bound with SO_REUSEPORT, so that replicas sharing one network namespace
    (host networking, or the test harness's node) can bind the same ports.
    """

    async def scrape(_: web.Request) -> web.Response:
        body, content_type = metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(_: web.Request) -> web.Response:
        ok = healthy()
        return web.Response(text="ok\n" if ok else "unhealthy\n", status=200 if ok else 503)

    routes: dict[int, list[web.RouteDef]] = {}
    if health_port:
        routes.setdefault(health_port, []).append(web.get("/healthz", healthz))
    if metrics_port:
        routes.setdefault(metrics_port, []).append(web.get("/metrics", scrape))
    runners = []
    for port, handlers in routes.items():
        app = web.Application()
        app.add_routes(handlers)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port, reuse_port=True).start()
        runners.append(runner)
    return runners
