"""Checks that PostgreSQL and Redis answer, and creates the database if it is missing.

Usage: services.py check | ensure-database. Exits non-zero with a one-line reason on failure.
"""

import os
import socket
import sys
from urllib.parse import unquote, urlsplit

DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/backoffice")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command not in ("check", "ensure-database"):
        return fail(f"unknown command {command!r}; use check or ensure-database")
    problems = [p for p in (check_postgres(), check_redis()) if p]
    if problems:
        return fail("; ".join(problems))
    if command == "ensure-database":
        return ensure_database()
    return 0


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _db_parts():
    parts = urlsplit(DATABASE_URL)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "dbname": unquote(parts.path.lstrip("/")),
    }


def check_postgres() -> str | None:
    import psycopg2

    db = _db_parts()
    try:
        psycopg2.connect(**{**db, "dbname": "postgres"}, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0]
        return (
            f"PostgreSQL is not reachable at {db['host']}:{db['port']} ({reason}); start it "
            f"(e.g. `pg_ctlcluster 15 main start` or `docker compose up -d postgres`) or set DATABASE_URL"
        )
    return None


def check_redis() -> str | None:
    parts = urlsplit(REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return (
            f"Redis is not reachable at {host}:{port} ({exc.strerror or exc}); start it "
            f"(e.g. `redis-server --daemonize yes` or `docker compose up -d redis`) or set REDIS_URL"
        )
    if not reply.startswith((b"+PONG", b"-NOAUTH")):
        return f"Redis at {host}:{port} answered {reply[:30]!r} instead of PONG"
    return None


def ensure_database() -> int:
    import psycopg2
    from psycopg2 import sql

    db = _db_parts()
    connection = psycopg2.connect(**{**db, "dbname": "postgres"}, connect_timeout=3)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["dbname"]])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["dbname"])))
            print(f"created database {db['dbname']}")
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
