"""Alembic's entry point: migrate the connection the store hands over, inside the
transaction (and lock) it holds."""

from alembic import context

context.configure(connection=context.config.attributes["connection"], target_metadata=None)
context.run_migrations()
