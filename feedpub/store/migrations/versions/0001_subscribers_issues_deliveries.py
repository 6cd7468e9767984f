"""Subscribers, issues, the posts each covered, their variants, one delivery each."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

_STAMP = sa.Text()


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("email_key", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("token", sa.Text, nullable=False, unique=True),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("updated_at", _STAMP, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'active', 'unsubscribed', 'bounced')"),
    )
    op.create_table(
        "issues",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("created_at", _STAMP, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
    )
    op.create_table(
        "issue_posts",
        sa.Column("post_id", sa.Text, primary_key=True),
        sa.Column("issue", sa.Integer, sa.ForeignKey("issues.number"), nullable=False),
    )
    op.create_table(
        "issue_variants",
        sa.Column("issue", sa.Integer, sa.ForeignKey("issues.number"), primary_key=True),
        sa.Column("variant", sa.Text, primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("issue", sa.Integer, sa.ForeignKey("issues.number"), primary_key=True),
        sa.Column(
            "subscriber",
            sa.Integer,
            sa.ForeignKey("subscribers.id"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("variant", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_reply", sa.Text),
        sa.Column("updated_at", _STAMP, nullable=False),
        sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed', 'skipped')"),
    )
    op.create_index("deliveries_open", "deliveries", ["issue", "status"])
