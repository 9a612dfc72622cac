"""Fixtures of the cluster tests (the session-wide `cluster`, `api`, `namespace` are in
tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from harness.nodeagent.agent import NodeAgent
from harness.pods import Pods, namespace_pods


@pytest.fixture
def node_agent(cluster: Any) -> NodeAgent:
    """The session's local node agent; skips when the tests use a cluster of their own."""
    local = cluster.local
    if local is None or local.node_agent is None:
        pytest.skip("needs the local node agent (KUBECONFIG points at another cluster)")
    agent: NodeAgent = local.node_agent
    return agent


@pytest.fixture
def pods(api: client.ApiClient, namespace: str) -> Pods:
    return namespace_pods(api, namespace)
