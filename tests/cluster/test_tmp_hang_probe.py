import pytest

pytestmark = pytest.mark.cluster


def test_fails(pods, node_agent):
    raise AssertionError("deliberate")
