"""Server-side prepared statements for the few statements every API call of a hot endpoint runs.

PostgreSQL parses and plans a statement each time it is sent; for the large one-round-trip statements of
the security-event decision, planning costs as much as executing. A `Prepared` statement is prepared
once per database connection and from then on only executed.

Only on persistent connections (CONN_MAX_AGE other than 0): with a new connection per request there is
nothing to reuse, and behind PgBouncer in transaction mode — where deployment sets CONN_MAX_AGE to 0 —
a session's prepared statements would not follow it from one transaction to the next.
"""

import re

from django.db import DatabaseError, connection
from psycopg2 import errors

_PARAM = re.compile(r"%\((\w+)\)s")


class Prepared:
    """`sql` with %(name)s parameters, prepared under `name` with the parameter types in `types`."""

    def __init__(self, name: str, sql: str, types: dict[str, str]):
        order = {param: n for n, param in enumerate(types, start=1)}
        missing = set(_PARAM.findall(sql)) - set(order)
        if missing:
            raise ValueError(f"no type for parameter(s) {', '.join(sorted(missing))} of {name}")
        self.name = name
        self.sql = sql
        numbered = _PARAM.sub(lambda m: f"${order[m[1]]}", sql)
        self._prepare = f"PREPARE {name} ({', '.join(types.values())}) AS {numbered}"
        self._execute = f"EXECUTE {name} ({', '.join(f'%({param})s' for param in types)})"

    def execute(self, cursor, params: dict, *, before: str = "") -> None:
        """Run the statement on this thread's connection; `before` is SQL sent ahead of it in the same
        round trip (such as SET LOCAL)."""
        if connection.settings_dict["CONN_MAX_AGE"] == 0:
            cursor.execute(before + self.sql, params)
            return
        prepared = _prepared_on_this_connection(cursor)
        if self.name not in prepared:
            cursor.execute(self._prepare)
            prepared.add(self.name)
        try:
            cursor.execute(before + self._execute, params)
        except DatabaseError as exc:
            # Deallocated behind our back (DISCARD ALL, a pooler): prepare it again, unless a transaction
            # is open (it has failed with the statement).
            if not isinstance(exc.__cause__, errors.InvalidSqlStatementName) or connection.in_atomic_block:
                raise
            cursor.execute(self._prepare)
            cursor.execute(before + self._execute, params)


def _prepared_on_this_connection(cursor) -> set[str]:
    """The names prepared on the cursor's database session (a new session starts with none)."""
    raw = cursor.cursor.connection
    state = getattr(connection, "_prepared_statements", None)
    if state is None or state[0] is not raw:
        state = (raw, set())
        connection._prepared_statements = state
    return state[1]
