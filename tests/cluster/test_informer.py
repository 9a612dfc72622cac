"""The runtime's list-then-watch against the real apiserver: lists are read in pages, and the
watch is left for a new list after `relist_seconds` (the safety net), every object handed on
again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as sync_client
from kubernetes_asyncio import client, config

from collectionflow.runtime.informer import LISTED, SYNCED, WatchEvent, list_and_watch
from harness.cluster import Cluster

pytestmark = pytest.mark.cluster

OBJECTS = 5


def config_map(name: str) -> sync_client.V1ConfigMap:
    return sync_client.V1ConfigMap(
        metadata=sync_client.V1ObjectMeta(name=name, labels={"informer-test": "yes"})
    )


async def events_until(
    kubeconfig: Path,
    namespace: str,
    enough: int,
    calls: list[dict[str, Any]],
    **options: Any,
) -> list[WatchEvent]:
    """The events of a list-and-watch of the test's ConfigMaps until `enough` SYNCED; every
    list call's arguments go into `calls`."""
    configuration = client.Configuration()
    await config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        core = client.CoreV1Api(api)

        async def lister(*args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return await core.list_namespaced_config_map(*args, **kwargs)

        seen: list[WatchEvent] = []
        events = list_and_watch(lister, namespace, label_selector="informer-test=yes", **options)
        async with asyncio.timeout(60):
            async for event in events:
                seen.append(event)
                if sum(e.type == SYNCED for e in seen) == enough:
                    return seen
    raise AssertionError("unreachable")


def test_a_list_is_read_in_pages_and_ends_with_one_synced(
    cluster: Cluster, api: sync_client.ApiClient, namespace: str
) -> None:
    core = sync_client.CoreV1Api(api)
    for n in range(OBJECTS):
        core.create_namespaced_config_map(namespace, config_map(f"cm-{n}"))
    calls: list[dict[str, Any]] = []
    seen = asyncio.run(events_until(cluster.kubeconfig, namespace, 1, calls, page_size=2))
    assert [e.type for e in seen] == [LISTED] * OBJECTS + [SYNCED]
    assert sorted(e.body["metadata"]["name"] for e in seen[:-1]) == [
        f"cm-{n}" for n in range(OBJECTS)
    ]
    pages = [call for call in calls if not call.get("watch")]
    assert [call["limit"] for call in pages] == [2, 2, 2]
    assert "_continue" not in pages[0]
    assert all(call["_continue"] for call in pages[1:])


def test_the_watch_is_left_for_a_new_list_after_relist_seconds(
    cluster: Cluster, api: sync_client.ApiClient, namespace: str
) -> None:
    core = sync_client.CoreV1Api(api)
    for n in range(2):
        core.create_namespaced_config_map(namespace, config_map(f"cm-{n}"))
    calls: list[dict[str, Any]] = []
    signs: list[int] = []
    seen = asyncio.run(
        events_until(
            cluster.kubeconfig,
            namespace,
            2,
            calls,
            relist_seconds=2,
            heard=lambda: signs.append(1),
        )
    )
    assert [e.type for e in seen] == [LISTED, LISTED, SYNCED, LISTED, LISTED, SYNCED]
    assert len(signs) >= 3, "each list and each watch answered is a sign of life"
    watches = [call for call in calls if call.get("watch")]
    assert watches, calls
    assert all(call["timeout_seconds"] <= 2 for call in watches)
    assert sum(not call.get("watch") for call in calls) == 2
