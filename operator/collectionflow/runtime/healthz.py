"""The probes' and the scrape's endpoint: `/healthz` (200 while the process is healthy, 503
once it is not: the kubelet restarts it) and `/metrics`, on each port asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web


async def serve(
    ports: Iterable[int], healthy: Callable[[], bool], metrics: Callable[[], tuple[bytes, str]]
) -> web.AppRunner:
    """Serve `/healthz` and `/metrics` (`metrics()` gives the body and its content type).

    The sockets are bound with SO_REUSEPORT, so that replicas sharing one network namespace
    (host networking, or the test harness's node) can bind the same ports.
    """

    async def scrape(_: web.Request) -> web.Response:
        body, content_type = metrics()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def healthz(_: web.Request) -> web.Response:
        ok = healthy()
        return web.Response(text="ok\n" if ok else "unhealthy\n", status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "0.0.0.0", port, reuse_port=True).start()
    return runner
