"""Daily range partitions of the event tables: created ahead of time, old ones dropped for retention.

Each partitioned table also has a DEFAULT partition, so an event from an unexpected time is stored rather
than refused. Creating a day that already has rows in the default partition moves them first, because
PostgreSQL refuses to attach a partition whose range the default partition still holds.
"""

from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction

# table -> (partition key column, the idempotency table and its time column)
PARTITIONED = {
    "trading_risk_trade": ("executed_at", "trading_risk_tradekey", "executed_at"),
    "trading_risk_orderevent": ("at", "trading_risk_ordereventkey", "at"),
}


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def ensure_partitions(*, start: date, days: int) -> list[str]:
    """Create the daily partitions of every event table from `start` for `days` days; returns those created."""
    created = []
    for table in PARTITIONED:
        existing = existing_partitions(table)
        for offset in range(days):
            day = start + timedelta(days=offset)
            if partition_name(table, day) not in existing:
                _create_partition(table, day)
                created.append(partition_name(table, day))
    return created


def drop_partitions_before(*, cutoff: date) -> list[str]:
    """Drop whole days older than `cutoff` (retention), with their idempotency records."""
    dropped = []
    for table, (_, key_table, key_column) in PARTITIONED.items():
        for name in sorted(existing_partitions(table) - {f"{table}_default"}):
            day = datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m%d").date()
            if day < cutoff:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE {name}")
                    cursor.execute(
                        f"DELETE FROM {key_table} WHERE {key_column} >= %s AND {key_column} < %s", day_bounds(day)
                    )
                dropped.append(name)
    return dropped


def existing_partitions(table: str) -> set[str]:
    """The names of the partitions `table` has now (the default one included)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


@transaction.atomic
def _create_partition(table: str, day: date) -> None:
    column = PARTITIONED[table][0]
    name = partition_name(table, day)
    start, end = day_bounds(day)
    with connection.cursor() as cursor:
        # Serialise creators (a beat task and a migration may race); the second finds it created.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [table])
        if name in existing_partitions(table):
            return
        cursor.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {table}_default WHERE {column} >= %s AND {column} < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end])


def partition_of(table: str, **key) -> str:
    """The partition a stored row is in (for tests and the admin's drill-down)."""
    column, value = next(iter(key.items()))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = %s LIMIT 1", [value])
        row = cursor.fetchone()
    return row[0] if row else ""
