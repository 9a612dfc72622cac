"""The database: engine and sessions, ORM models, Alembic migrations and the flow repository."""
