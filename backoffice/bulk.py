"""Set-based idempotent inserts for inbound batches.

Each row has a natural key. The batch is COPYed into a temporary staging table, then moved with one
plain INSERT … SELECT in a savepoint; only if a key already exists does it roll back and go through
INSERT … SELECT … ON CONFLICT DO NOTHING. For the rows the table already had, the stored values are
compared with the sent ones: equal → a duplicate (the same item sent again), different → a conflict,
which the caller turns into a 409 after rolling back.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db import IntegrityError, connection, transaction


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
    if not rows:
        return InsertOutcome(0, [], [])
    cols = ", ".join(columns)
    keys = ", ".join(columns[:key_size])
    stage = f"stage_{table}"
    with connection.cursor() as cursor:
        raw = cursor.cursor
        # One staging table per connection and target, emptied at every commit.
        raw.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT {cols} FROM {table} WITH NO DATA"
        )
        raw.execute(f"TRUNCATE {stage}")
        raw.copy_expert(f"COPY {stage} ({cols}) FROM STDIN", io.StringIO(_copy_text(rows)))
        # Usually every row is new: plain INSERTs in a savepoint check each key once, where ON CONFLICT
        # probes the index before inserting. Key order keeps two overlapping batches from deadlocking.
        try:
            with transaction.atomic():
                cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ORDER BY {keys}")
            return InsertOutcome(len(rows), [], [])
        except IntegrityError:
            pass
        raw.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} ORDER BY {keys} "
            f"ON CONFLICT ({keys}) DO NOTHING RETURNING {keys}"
        )
        inserted = {tuple(r) for r in raw.fetchall()}
        if len(inserted) == len(rows):
            return InsertOutcome(len(inserted), [], [])
        compare_cols = ", ".join(f"t.{columns[c]}" for c in compare)
        join = " AND ".join(f"t.{c} = s.{c}" for c in columns[:key_size])
        raw.execute(
            f"SELECT {', '.join('s.' + c for c in columns[:key_size])}, {compare_cols} "
            f"FROM {stage} s JOIN {table} t ON {join}"
        )
        stored = {tuple(r[:key_size]): tuple(r[key_size:]) for r in raw.fetchall()}
    duplicates, conflicts = [], []
    for i, row in enumerate(rows):
        key = tuple(row[:key_size])
        if key in inserted:
            continue
        same = stored.get(key) == tuple(row[c] for c in compare)
        (duplicates if same else conflicts).append(i)
    return InsertOutcome(len(inserted), duplicates, conflicts)


def _copy_text(rows: Sequence[tuple]) -> str:
    return "".join("\t".join(map(_field, row)) + "\n" for row in rows)


def _field(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text
