"""Webhook replay protection: the token of each signed request taken (Mailgun
signs timestamp and token), kept while a replay of it would still be on time."""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "webhook_tokens",
        sa.Column("token", sa.Text, primary_key=True),
        sa.Column("seen_at", sa.Text, nullable=False),
    )
    op.create_index("webhook_tokens_by_age", "webhook_tokens", ["seen_at"])
