"""The API client reads its environment once: the proxy at start, never .netrc per request."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from collectionflow.k8s.gateway import env_proxy, read_environment_once

pytestmark = pytest.mark.unit
PROXY = "http://proxy.invalid:3128"


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,.cluster.local")


@pytest.mark.usefixtures("proxied")
@pytest.mark.parametrize(
    ("server", "proxy"),
    [
        ("https://api.example.invalid:6443", PROXY),
        ("https://127.0.0.1:6443", None),
        ("https://kubernetes.default.svc.cluster.local", None),
        ("http://api.example.invalid", None),
    ],
)
def test_the_proxy_is_the_environments_for_the_servers_scheme_and_host(
    server: str, proxy: str | None
) -> None:
    assert env_proxy(server) == proxy


@pytest.mark.usefixtures("proxied")
async def test_the_session_neither_reads_netrc_nor_the_proxy_variables_per_request() -> None:
    configuration = client.Configuration(host="https://api.example.invalid:6443")
    api_client = client.ApiClient(configuration)
    assert api_client.rest_client.pool_manager.trust_env
    read_environment_once(api_client)
    try:
        assert not api_client.rest_client.pool_manager.trust_env
        assert api_client.rest_client.proxy == PROXY
    finally:
        await api_client.close()
