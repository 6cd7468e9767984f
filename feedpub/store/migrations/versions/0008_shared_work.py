"""Work shared by several processes: a delivery claimed by one worker until its
lease ends; a scheduled run claimed by one daemon, with when it finished; and the
web app's rate limits, counted across its processes."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("worker", sa.Text))
    op.add_column("deliveries", sa.Column("lease_until", sa.Text))
    op.add_column("runs", sa.Column("last_finished", sa.Text))
    op.add_column("runs", sa.Column("holder", sa.Text))
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_index("rate_limits_by_age", "rate_limits", ["window_start"])
