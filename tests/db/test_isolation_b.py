"""Each test module gets databases of its own: module b never sees module a's marker row."""

from __future__ import annotations

import pytest

from collectionflow.db.repository import FlowRepository
from collectionflow.domain.records import FlowRef

pytestmark = pytest.mark.db

OWN_MARKER = "isolation-marker-b"
OTHER_MARKER = "isolation-marker-a"


async def test_the_other_modules_marker_is_absent(repository: FlowRepository) -> None:
    await repository.ensure_flow(FlowRef(OWN_MARKER, "flows", OWN_MARKER, "collection"))

    flows = {row.ref.flow_uid for row in await repository.list_flows()}

    assert OWN_MARKER in flows
    assert OTHER_MARKER not in flows
