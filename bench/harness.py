"""The benchmark harness: a fresh database, the app under gunicorn, and a registry of scenarios.

Scenarios talk to the app over real HTTP on 127.0.0.1, like the matching engine would, so the figures
include the WSGI server, authentication, parsing and the database. Setup that needs Django (creating an
API client, a COPY for comparison) runs in this process against the same bench database.
"""

import asyncio
import gc
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB_NAME = "backoffice_bench"
BENCH_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15")
CACHE_KEY_PREFIX = f"bench-{os.getpid()}"  # this run's own keys in the app's Redis
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/backoffice"
HOST = "127.0.0.1"
# One process per core, each with threads: a request spends much of its time waiting on PostgreSQL and
# Redis, and threaded workers keep connections alive (sync workers close them after every response).
WORKERS = int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 1))
THREADS = int(os.environ.get("BENCH_THREADS", 8))
STARTUP_TIMEOUT = 30.0


# ---- results and the registry ------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    scenario: str
    metric: str
    value: float
    unit: str
    goal: str = ""
    met: bool | None = None


def measured(scenario: str, metric: str, value: float, unit: str, *, at_most=None, at_least=None) -> Result:
    """A figure and, when it has a goal, whether the goal was met."""
    if at_most is not None:
        return Result(scenario, metric, value, unit, f"<= {at_most:g}", value <= at_most)
    if at_least is not None:
        return Result(scenario, metric, value, unit, f">= {at_least:g}", value >= at_least)
    return Result(scenario, metric, value, unit)


@dataclass(frozen=True)
class Context:
    """What a scenario gets: where the app listens, how big to go, and a tag unique to this run."""

    base_url: str
    quick: bool
    run_tag: str

    def http(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Context], list[Result]]


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, description: str):
    """Register a scenario: a function from a Context to its Results. Any module in bench/ may define one."""

    def register(run: Callable[[Context], list[Result]]):
        SCENARIOS[name] = Scenario(name, description, run)
        return run

    return register


# ---- statistics --------------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """The p-th percentile by linear interpolation (with few samples, p99 is close to the maximum)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(p) - 1]


def timed(call: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


# ---- open-loop load ----------------------------------------------------------------------------------
@dataclass
class OpenLoopRun:
    """What an open-loop run saw: latencies (seconds, from each request's due time) of the 200 answers,
    their bodies if asked for, and the statuses of the others."""

    latencies: list[float]
    bodies: list[bytes]
    errors: dict[int, int]
    seconds: float


def http_request(base_url: str, method: str, path: str, token: str, body: bytes) -> bytes:
    """One HTTP/1.1 keep-alive request as bytes, JSON body, bearer token: encoded once, before any clock."""
    host = base_url.removeprefix("http://").split("/")[0]
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def open_loop(
    base_url: str, requests: list[bytes], *, rate: float, connections: int, keep_bodies: bool = False
) -> OpenLoopRun:
    """Send the encoded requests at `rate` per second over `connections` keep-alive connections.

    Request n is due at start + n / rate whatever the answers' speed, and its latency counts from that
    moment, so time spent waiting for a free connection is included ("coordinated omission" cannot hide
    a slow server). The generator shares the cores with the app and PostgreSQL, so it does as little
    per request as it can: one asyncio loop, one timer per request, raw sockets read by protocol
    callbacks (no stream objects, no task per request). Its garbage collector is off for the run (the
    run allocates little): a full collection of this process, Django included, would stall the
    schedule for tens of milliseconds and count against the server.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        return asyncio.run(_open_loop(base_url, requests, rate, connections, keep_bodies))
    finally:
        gc.enable()
        gc.unfreeze()


async def _open_loop(base_url, requests, rate, connections, keep_bodies) -> OpenLoopRun:
    loop = asyncio.get_running_loop()
    host, port = base_url.removeprefix("http://").split("/")[0].split(":")
    run = OpenLoopRun([], [], {}, 0.0)
    idle: deque[_Connection] = deque()  # first in, first out: every connection stays in use
    waiting: deque[tuple[float, bytes]] = deque()
    finished = loop.create_future()
    left = len(requests)

    def answered(conn: _Connection | None, due: float, status: int, body: bytes) -> None:
        """An answer (status 0: the connection was lost), and the connection free for the next request."""
        nonlocal left
        if status == 200:
            run.latencies.append(time.perf_counter() - due)
            if keep_bodies:
                run.bodies.append(body)
        else:
            if not run.errors:
                print(f"first error: {status} {body[:300]!r}", file=sys.stderr)
            run.errors[status] = run.errors.get(status, 0) + 1
        left -= 1
        if conn is not None:
            if waiting:
                conn.send(*waiting.popleft())
            else:
                idle.append(conn)
        if left == 0 and not finished.done():
            finished.set_result(None)

    def lost(conn: _Connection) -> None:
        if conn in idle:
            idle.remove(conn)

    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: _Connection(answered, lost), host, int(port))
        idle.append(conn)

    def due_now(due: float, request: bytes) -> None:
        if idle:
            idle.popleft().send(due, request)
        else:
            waiting.append((due, request))

    began, loop_began = time.perf_counter(), loop.time()
    for n, request in enumerate(requests):
        loop.call_at(loop_began + n / rate, due_now, began + n / rate, request)
    if requests:
        try:  # bounded: a server that stops answering ends the run, its unanswered requests counted
            await asyncio.wait_for(finished, timeout=len(requests) / rate + 60)
        except TimeoutError:
            run.errors[0] = run.errors.get(0, 0) + left
    run.seconds = time.perf_counter() - began
    for conn in idle:
        conn.transport.close()
    return run


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, parses the answer as its bytes arrive."""

    def __init__(self, answered, lost):
        self.answered, self.lost = answered, lost
        self.buffer = bytearray()
        self.due, self.busy = 0.0, False

    def connection_made(self, transport):
        self.transport = transport

    def send(self, due: float, request: bytes) -> None:
        self.due, self.busy = due, True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"content-length:") + 15
        length = int(head[start : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.busy = False
        self.answered(self, self.due, int(head[9:12]), body)

    def connection_lost(self, exc):
        self.lost(self)
        if self.busy:
            self.busy = False
            self.answered(None, self.due, 0, f"connection lost: {exc}".encode())


# ---- the bench database ------------------------------------------------------------------------------
def bench_database_url() -> str:
    """BENCH_DATABASE_URL, or DATABASE_URL with the database name swapped for backoffice_bench."""
    if url := os.environ.get("BENCH_DATABASE_URL"):
        return url
    parts = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    return urlunsplit(parts._replace(path=f"/{BENCH_DB_NAME}"))


def bench_environment(database_url: str) -> dict[str, str]:
    """The app's environment: production settings except TLS, a throwaway key, its own cache prefix."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-use",
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": database_url,
        # Never share risk-parameter cache entries with a development server, nor rate counters (failed
        # logins per customer ID, registrations per IP, …) with an earlier run, whose IDs were the same.
        "CACHE_KEY_PREFIX": CACHE_KEY_PREFIX,
        # Tasks the app queues during a run go to a Redis database of their own, emptied afterwards, so no
        # development worker ever picks up work that refers to the bench database.
        "CELERY_BROKER_URL": BENCH_BROKER_URL,
        "LOG_LEVEL": "WARNING",
    }


def prepare_database(database_url: str) -> None:
    """Recreate and migrate the bench database, then set Django up on it in this process.

    Recreated on every run: figures start from the same empty tables, and migrations that changed
    since the last run never leave the bench database in a state `migrate` refuses.
    """
    _recreate_database(database_url)
    os.environ.update(bench_environment(database_url))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def _recreate_database(database_url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to recreate {name!r}: the bench database's name must contain 'bench'")
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")), connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()


# ---- the app under gunicorn --------------------------------------------------------------------------
@contextmanager
def serve(database_url: str) -> Iterator[str]:
    """Run the app under gunicorn on a free loopback port until the block ends; yields its base URL."""
    port = _free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "backoffice.wsgi", "--config", "gunicorn.conf.py",
             "-w", str(WORKERS), "--threads", str(THREADS), "-b", f"{HOST}:{port}", "--graceful-timeout", "5"],
            cwd=ROOT, env=bench_environment(database_url), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base_url = f"http://{HOST}:{port}"
            _wait_until_healthy(server, base_url, log)
            yield base_url
        finally:
            _stop(server)
            _empty_bench_broker()
            _forget_bench_keys()


def _empty_bench_broker() -> None:
    import redis

    redis.Redis.from_url(BENCH_BROKER_URL).flushdb()


def _forget_bench_keys() -> None:
    """Delete this run's cache entries and counters (its own key prefix) from the app's Redis."""
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    for batch in _batched(client.scan_iter(match=f"{CACHE_KEY_PREFIX}:*", count=1000), 1000):
        client.delete(*batch)


def _batched(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_until_healthy(server: subprocess.Popen, base_url: str, log) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            # /health answers 200 when the database and Redis answer (no Celery worker is needed here).
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    log.seek(0)
    raise SystemExit(f"gunicorn did not become healthy at {base_url}:\n{log.read()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ---- output ------------------------------------------------------------------------------------------
def format_table(results: list[Result]) -> str:
    header = ("scenario", "metric", "value", "unit", "goal", "met")
    rows = [
        (r.scenario, r.metric, _number(r.value), r.unit, r.goal, {True: "yes", False: "NO", None: ""}[r.met])
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [_line(row, widths) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    cells = [cell.rjust(w) if i == 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
    return "  ".join(cells).rstrip()


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"
