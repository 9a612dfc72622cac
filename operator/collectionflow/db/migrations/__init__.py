"""Alembic migrations of the collectionflow schema; run them with `collectionflow db upgrade`."""
