"""Open deliveries only, by issue: a send's two status changes a message
('pending' to 'sending', 'sending' to 'sent') moved an entry of the old index
each, across its pages; now they touch one entry, or drop it."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

_OPEN = sa.text("status IN ('pending', 'sending')")


def upgrade() -> None:
    op.drop_index("deliveries_open", table_name="deliveries")
    op.create_index(
        "deliveries_open", "deliveries", ["issue"], sqlite_where=_OPEN, postgresql_where=_OPEN
    )
