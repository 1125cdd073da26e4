"""Reference data in: customers and accounts one request at a time, prices in batches of 10,000.

Customers and accounts arrive one by one (the engine sends them as people sign up), so what matters is
the latency of one PUT. Prices arrive in large, constant batches, so what matters is items per second;
a bare COPY of the same rows into a table shaped like the price table shows how close the API gets to
what PostgreSQL alone can do.
"""

import io
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import orjson

from bench.harness import Context, Result, measured, percentile, scenario, timed

NAME = "reference_ingest"
ASSETS = ("BTC", "ETH", "SOL", "XRP", "USDT", "USDC", "TRX", "LTC")
BATCH = 10_000
COMMIT_SAMPLES = 50


@scenario(NAME, "PUT customers and accounts one at a time; POST prices in batches of 10,000; compare with COPY")
def reference_ingest(ctx: Context) -> list[Result]:
    count, batches = (100, 3) if ctx.quick else (500, 10)
    token = _create_client(ctx.run_tag)
    price_batches = _price_batches(batches)
    with ctx.http(token) as http:
        customer_times = [_put(http, f"/api/v1/customers/{cid}", body) for cid, body in _customers(ctx, count)]
        account_times = [_put(http, f"/api/v1/accounts/{aid}", body) for aid, body in _accounts(ctx, count)]
        price_times = [_post_prices(http, batch) for batch in price_batches]
    copy_times, commit_times = _database_alone(price_batches)
    api_rate, copy_rate = _rate(BATCH, price_times), _rate(BATCH, copy_times)
    return [
        *_latencies("PUT customer", customer_times),
        *_latencies("PUT account", account_times),
        measured(NAME, "prices via API", api_rate, "items/s", at_least=20_000),
        measured(NAME, "prices batch p50", 1000 * percentile(price_times, 50), "ms"),
        measured(NAME, "prices batch p99", 1000 * percentile(price_times, 99), "ms", at_most=1000),
        measured(NAME, "prices via bare COPY", copy_rate, "items/s"),
        measured(NAME, "API / bare COPY", api_rate / copy_rate, "ratio", at_least=0.2),
        # Every PUT commits once: the disk's flush time is the floor under its latency.
        measured(NAME, "bare INSERT + COMMIT p50", 1000 * percentile(commit_times, 50), "ms"),
    ]


def _latencies(label: str, seconds: list[float]) -> list[Result]:
    return [
        measured(NAME, f"{label} rate", _rate(1, seconds), "requests/s"),
        measured(NAME, f"{label} p50", 1000 * percentile(seconds, 50), "ms", at_most=20),
        measured(NAME, f"{label} p99", 1000 * percentile(seconds, 99), "ms", at_most=100),
    ]


def _rate(items_per_call: int, seconds: list[float]) -> float:
    return items_per_call * len(seconds) / sum(seconds)


# ---- setup in the bench database ---------------------------------------------------------------------
def _create_client(run_tag: str) -> str:
    from django.utils import timezone

    from backoffice import api_clients, audit

    _, token = api_clients.create_api_client(
        name=f"bench-{run_tag}", scopes=["reference"], actor=audit.Actor.system("bench"), now=timezone.now()
    )
    return token


# ---- requests ----------------------------------------------------------------------------------------
def _customers(ctx: Context, count: int):
    for n in range(count):
        yield (
            f"bench-{ctx.run_tag}-C{n}",
            {
                "type": "individual" if n % 10 else "corporate",
                "name": f"Bench Customer {n}",
                "country": ("DE", "FR", "SG", "BR", "TR")[n % 5],
                "email": f"bench{n}@example.com",
                "phone": f"+49 30 {1_000_000 + n}",
                **({"date_of_birth": "1990-05-17"} if n % 10 else {}),
            },
        )


def _accounts(ctx: Context, count: int):
    for n in range(count):
        yield f"bench-{ctx.run_tag}-A{n}", {"customer_id": f"bench-{ctx.run_tag}-C{n}", "kind": "spot"}


def _put(http, path: str, body: dict) -> float:
    response, seconds = timed(lambda: http.put(path, json=body))
    if response.status_code not in (200, 201):
        raise SystemExit(f"PUT {path} answered {response.status_code}: {response.text[:500]}")
    return seconds


def _price_batches(batches: int) -> list[list[tuple[str, datetime, str]]]:
    """Distinct rows, a microsecond apart, so every item is stored (none is a duplicate)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    per_asset = BATCH // len(ASSETS)
    return [
        [
            (asset, start + timedelta(microseconds=b * per_asset + k), f"{1 + (k % 997) / 1000:.6f}")
            for k in range(per_asset)
            for asset in ASSETS
        ]
        for b in range(batches)
    ]


def _post_prices(http, rows: list[tuple[str, datetime, str]]) -> float:
    # Encoded before the clock starts: the engine's own serialisation is not the back office's cost.
    body = orjson.dumps([{"asset": asset, "usd": usd, "at": at.isoformat()} for asset, at, usd in rows])
    response, seconds = timed(
        lambda: http.post("/api/v1/prices/", content=body, headers={"Content-Type": "application/json"})
    )
    if response.status_code != 200 or response.json() != {"accepted": len(rows), "duplicates": 0}:
        raise SystemExit(f"POST /api/v1/prices/ answered {response.status_code}: {response.text[:500]}")
    return seconds


# ---- the comparison: PostgreSQL alone, into a table shaped like the price table ---------------------
@contextmanager
def _scratch_table():
    from django.db import connection

    from trading_risk.models import AssetPrice

    with connection.cursor() as cursor:
        # Same columns, constraints and indexes, so the difference is the API, not the table.
        cursor.execute(f"CREATE TABLE bench_copy_scratch (LIKE {AssetPrice._meta.db_table} INCLUDING ALL)")
    try:
        yield connection
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_copy_scratch")


def _database_alone(price_batches: list[list[tuple[str, datetime, str]]]) -> tuple[list[float], list[float]]:
    """Seconds per bare COPY of each batch, and per single-row INSERT (each its own committed transaction)."""
    received = datetime.now(UTC).isoformat()
    with _scratch_table() as connection:
        copies = [_copy_batch(connection, rows, received) for rows in price_batches]
        commits = [_insert_one(connection, n, received) for n in range(COMMIT_SAMPLES)]
    return copies, commits


def _copy_batch(connection, rows, received: str) -> float:
    text = "".join(f"{asset}\t{at.isoformat()}\t{usd}\t{received}\n" for asset, at, usd in rows)
    with connection.cursor() as cursor:
        # Django keeps the connection in autocommit, so this is one transaction, commit included (as the API's).
        copy = "COPY bench_copy_scratch (asset, at, usd, received_at) FROM STDIN"
        return timed(lambda: cursor.cursor.copy_expert(copy, io.StringIO(text)))[1]


def _insert_one(connection, n: int, received: str) -> float:
    sql = "INSERT INTO bench_copy_scratch (asset, at, usd, received_at) VALUES ('ONE', %s, 1, %s)"
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    with connection.cursor() as cursor:
        return timed(lambda: cursor.execute(sql, [at, received]))[1]
