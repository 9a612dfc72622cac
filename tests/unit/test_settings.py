"""Settings come from COLLECTIONFLOW_* variables, nested groups split by `__`."""

from __future__ import annotations

import pytest

from collectionflow.settings import DEFAULT_DATABASE_URL, Settings

pytestmark = pytest.mark.unit


def test_defaults_use_a_local_sqlite_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLLECTIONFLOW_DB__URL", raising=False)

    settings = Settings()

    assert settings.db.resolved_url() == DEFAULT_DATABASE_URL
    assert settings.operator.image == "collectionflow-operator:0.1.0"
    assert settings.operator.job_ttl_seconds == 86400


def test_nested_variables_and_secret_url(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://operator:s3cret@db:5432/flows"
    monkeypatch.setenv("COLLECTIONFLOW_DB__URL", url)
    monkeypatch.setenv("COLLECTIONFLOW_OPERATOR__JOB_TTL_SECONDS", "3600")
    monkeypatch.setenv("COLLECTIONFLOW_OPERATOR__STALL_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("COLLECTIONFLOW_FLOW_UID", "not-a-setting")

    settings = Settings()

    assert settings.db.resolved_url() == url
    assert "s3cret" not in repr(settings)
    assert settings.operator.job_ttl_seconds == 3600
    assert settings.operator.stall_timeout_seconds == 2.5
