"""Copy a whole state into an empty database (``feedpub state migrate``): a
SQLite file into PostgreSQL, table by table in one transaction, counted after."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from feedpub.errors import StateError
from feedpub.store.database import StateDatabase, _reason

# Every table, each after those it refers to. The web app's rate limits are not
# copied: they only matter for a few minutes.
TABLES = (
    "subscribers",
    "issues",
    "issue_posts",
    "issue_variants",
    "deliveries",
    "runs",
    "subscribe_requests",
    "confirmations",
    "retired_tokens",
    "list_events",
    "suppressions",
    "webhook_tokens",
)
# Tables whose ids the database hands out: the next id follows the copied ones.
_SERIAL = {"subscribers": "id", "subscribe_requests": "id"}
_CHUNK = 5000


def copy_state(
    source: StateDatabase,
    target: StateDatabase,
    progress: Callable[[str, int], None] = lambda table, rows: None,
) -> dict[str, int]:
    """Copy every table of ``source`` into ``target``, which must hold no data;
    the rows of each table, checked to be as many in both afterwards."""
    counts: dict[str, int] = {}
    try:
        with source.engine.connect() as reading, target.engine.connect() as writing:
            held = [t for t in TABLES if _count(writing, t)]
            if held:
                raise StateError(
                    f"{target.name} already holds data (in {', '.join(held)}); "
                    "migrate into an empty database"
                )
            reading.exec_driver_sql("BEGIN")  # one moment of the source throughout
            writing.exec_driver_sql("BEGIN")
            try:
                for table in TABLES:
                    counts[table] = _copy_table(reading, writing, table)
                    progress(table, counts[table])
                if target.shared:
                    for table, column in _SERIAL.items():
                        writing.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                            f" COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {table}"
                        )
                for table in TABLES:
                    copied = _count(writing, table)
                    if copied != counts[table]:
                        raise StateError(
                            f"{table}: {counts[table]} row(s) read but {copied} written; "
                            "nothing was migrated"
                        )
            except BaseException:
                writing.exec_driver_sql("ROLLBACK")
                raise
            finally:
                reading.exec_driver_sql("COMMIT")
            writing.exec_driver_sql("COMMIT")
    except exc.SQLAlchemyError as error:
        raise StateError(f"cannot migrate to {target.name}: {_reason(error)}") from None
    return counts


def _count(connection: Connection, table: str) -> int:
    return int(connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar() or 0)


def _copy_table(reading: Connection, writing: Connection, table: str) -> int:
    result = reading.exec_driver_sql(f"SELECT * FROM {table}")
    columns = list(result.keys())
    insert = sqlalchemy.text(
        f"INSERT INTO {table} ({', '.join(columns)})"
        f" VALUES ({', '.join(f':{column}' for column in columns)})"
    )
    copied = 0
    while rows := result.fetchmany(_CHUNK):
        writing.execute(insert, [dict(zip(columns, row, strict=True)) for row in rows])
        copied += len(rows)
    return copied
