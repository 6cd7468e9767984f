"""When each scheduled job last ran."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("job", sa.Text, primary_key=True),
        sa.Column("last_started", sa.Text),
        sa.Column("last_success", sa.Text),
        sa.Column("last_outcome", sa.Text),
    )
