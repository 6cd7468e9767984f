"""Double opt-in: the web form's queue, single-use confirmation nonces, and the
tokens retired when a subscriber leaves or comes back."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "subscribe_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("requested_at", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("message", sa.LargeBinary),
        sa.Column("recipient", sa.Text),
        sa.Column("message_name", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt", sa.Text, nullable=False),
        sa.Column("claimed_at", sa.Text),
        sa.Column("last_reply", sa.Text),
        sa.CheckConstraint("status IN ('queued', 'ready', 'sending', 'sent', 'dropped', 'failed')"),
    )
    op.create_index("subscribe_requests_due", "subscribe_requests", ["status", "next_attempt"])
    op.create_table(
        "confirmations",
        sa.Column("nonce_hash", sa.Text, primary_key=True),
        sa.Column("subscriber", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("used_at", sa.Text),
    )
    op.create_index("confirmations_by_subscriber", "confirmations", ["subscriber", "created_at"])
    op.create_table(
        "retired_tokens",
        sa.Column("token", sa.Text, primary_key=True),
        sa.Column("subscriber", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
        sa.Column("retired_at", sa.Text, nullable=False),
    )
