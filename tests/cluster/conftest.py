"""Fixtures of the cluster tests (the session-wide `cluster`, `api`, `namespace` are in
tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.nodeagent import NodeAgent


@pytest.fixture
def node_agent(cluster: Any) -> NodeAgent:
    """The session's local node agent; skips when the tests use a cluster of their own."""
    local = cluster.local
    if local is None or local.node_agent is None:
        pytest.skip("needs the local node agent (KUBECONFIG points at another cluster)")
    agent: NodeAgent = local.node_agent
    return agent
