"""The state database's migrations (Alembic), one schema for SQLite and PostgreSQL."""
