"""Set-based idempotent inserts for inbound batches.

Each row has a natural key. Rows are inserted with INSERT … ON CONFLICT DO NOTHING; for the rows the
database already had, the stored values are compared with the sent ones: equal → a duplicate (the same
item sent again), different → a conflict, which the caller turns into a 409 after rolling back.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from psycopg2.extras import execute_values


@dataclass(frozen=True)
class InsertOutcome:
    inserted: int
    duplicates: list[int]  # indexes into the rows given
    conflicts: list[int]


def insert_idempotent(
    *, table: str, columns: Sequence[str], rows: Sequence[tuple], key_size: int, compare: Sequence[int]
) -> InsertOutcome:
    """Insert rows whose first `key_size` columns are the natural key; report duplicates and conflicts.

    `compare` lists the column positions that must match for a re-sent row to count as the same item.
    Must run inside the caller's transaction so a conflict can roll everything back.
    """
    cols = ", ".join(columns)
    key_cols = ", ".join(columns[:key_size])
    with connection.cursor() as cursor:
        returned = execute_values(
            cursor.cursor,
            f"INSERT INTO {table} ({cols}) VALUES %s ON CONFLICT ({key_cols}) DO NOTHING RETURNING {key_cols}",
            rows,
            page_size=5000,
            fetch=True,
        )
        inserted = {tuple(r) for r in returned}
        pending = [i for i, row in enumerate(rows) if tuple(row[:key_size]) not in inserted]
        if not pending:
            return InsertOutcome(len(inserted), [], [])
        stored = _stored_rows(cursor, table, columns, key_size, compare, [rows[i] for i in pending])
    duplicates, conflicts = [], []
    for i in pending:
        key = tuple(rows[i][:key_size])
        same = stored.get(key) == tuple(rows[i][c] for c in compare)
        (duplicates if same else conflicts).append(i)
    return InsertOutcome(len(inserted), duplicates, conflicts)


def _stored_rows(cursor, table, columns, key_size, compare, rows) -> dict:
    key_cols = ", ".join(columns[:key_size])
    compare_cols = ", ".join(columns[c] for c in compare)
    keys = [tuple(r[:key_size]) for r in rows]
    found = execute_values(
        cursor.cursor,
        f"SELECT {key_cols}, {compare_cols} FROM {table} WHERE ({key_cols}) IN (VALUES %s)",
        keys,
        page_size=5000,
        fetch=True,
    )
    return {tuple(r[:key_size]): tuple(r[key_size:]) for r in found}
