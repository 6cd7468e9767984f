"""List health: each bounce, complaint and unsubscribe reported, once; and the
addresses never to mail again, kept when their subscriber is deleted. Those who
left or bounced before this version are suppressed from the start."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "list_events",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("email_key", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("issue", sa.Integer),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.CheckConstraint("kind IN ('hard', 'soft', 'complaint', 'unsubscribe')"),
    )
    op.create_index("list_events_by_address", "list_events", ["email_key", "kind", "at"])
    op.create_index("list_events_by_issue", "list_events", ["issue", "kind"])
    op.create_table(
        "suppressions",
        sa.Column("email_key", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.CheckConstraint("reason IN ('complained', 'bounced', 'unsubscribed')"),
    )
    op.execute(
        "INSERT INTO suppressions (email_key, email, reason, detail, created_at)"
        " SELECT email_key, email, status, 'before list health was recorded', updated_at"
        " FROM subscribers WHERE status IN ('bounced', 'unsubscribed')"
    )
