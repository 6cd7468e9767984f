"""A subscriber may pause the digest."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column(
        "subscribers", sa.Column("paused", sa.Integer, nullable=False, server_default="0")
    )
