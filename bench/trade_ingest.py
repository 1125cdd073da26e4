"""Trades and order events in: batches of 10,000 over HTTP, one request at a time (one ingest worker busy).

What matters is events per second per worker end to end (HTTP → validated → stored, the order/cancel
counter included) and the latency of one 10,000-item batch. A bare COPY of the same trade rows into a
table shaped like the trade table (same columns and indexes, not partitioned) shows how close the API
gets to what PostgreSQL alone can do.

Run alone: `python -m bench.trade_ingest [--quick]`.
"""

import io
import sys
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import orjson

from bench.harness import Context, Result, measured, percentile, scenario, timed

NAME = "trade_ingest"
BATCH = 10_000
ACCOUNTS = 2_000
SYMBOLS = (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH"), ("SOLUSDT", "SOL"), ("XRPUSDT", "XRP"))


@scenario(NAME, "POST trades and order events in batches of 10,000 over HTTP; compare trades with a bare COPY")
def trade_ingest(ctx: Context) -> list[Result]:
    batches = 4 if ctx.quick else 20
    token = _setup(ctx.run_tag)
    trade_batches = [_trades(ctx.run_tag, b) for b in range(batches)]
    event_batches = [_order_events(ctx.run_tag, b) for b in range(batches)]
    with ctx.http(token) as http:
        _post(http, "/api/v1/trades/", trade_batches[0])  # warm-up: connections, caches
        trade_times = [_post(http, "/api/v1/trades/", body) for body in trade_batches[1:]]
        event_times = [_post(http, "/api/v1/order-events/", body) for body in event_batches]
        duplicate_time = _post(http, "/api/v1/trades/", trade_batches[1], accepted=0)
    copy_times = _bare_copy(ctx.run_tag, batches)
    trade_rate, event_rate, copy_rate = _rate(trade_times), _rate(event_times), _rate(copy_times)
    return [
        measured(NAME, "trades via API", trade_rate, "events/s", at_least=100_000),
        measured(NAME, "trades batch p50", 1000 * percentile(trade_times, 50), "ms"),
        measured(NAME, "trades batch p99", 1000 * percentile(trade_times, 99), "ms", at_most=150),
        measured(NAME, "order events via API", event_rate, "events/s", at_least=100_000),
        measured(NAME, "order events batch p50", 1000 * percentile(event_times, 50), "ms"),
        measured(NAME, "order events batch p99", 1000 * percentile(event_times, 99), "ms", at_most=150),
        measured(NAME, "re-sent batch (all duplicates)", 1000 * duplicate_time, "ms"),
        measured(NAME, "trades via bare COPY", copy_rate, "events/s"),
        measured(NAME, "API / bare COPY", trade_rate / copy_rate, "ratio"),
    ]


def _rate(seconds: list[float]) -> float:
    return BATCH * len(seconds) / sum(seconds)


# ---- setup in the bench database ---------------------------------------------------------------------
def _setup(run_tag: str) -> str:
    from django.utils import timezone

    from accounts.models import Account, Customer
    from backoffice import api_clients, audit
    from trading_risk.models import AssetPrice, Instrument

    now = timezone.now()
    _forget_counters()
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"{run_tag}-C{n}",
                type="INDIVIDUAL",
                name=f"Bench {n}",
                country="DE",
                email=f"b{n}@example.com",
                phone=f"+49 30 {n}",
                created_at=now,
                updated_at=now,
            )
            for n in range(ACCOUNTS // 2)
        ]
    )
    Account.objects.bulk_create(
        [
            Account(
                external_id=f"{run_tag}-A{n}", customer=customers[n // 2], kind="SPOT", created_at=now, updated_at=now
            )
            for n in range(ACCOUNTS)
        ]
    )
    for symbol, base in SYMBOLS:
        Instrument.objects.get_or_create(
            symbol=symbol,
            defaults={
                "kind": "SPOT",
                "base": base,
                "quote": "USDT",
                "listed_at": now - timedelta(days=365),
                "created_at": now,
                "updated_at": now,
            },
        )
    AssetPrice.objects.bulk_create(
        [
            AssetPrice(asset=asset, usd=usd, at=now - timedelta(days=2, seconds=k), received_at=now)
            for k in range(60)
            for asset, usd in (("BTC", 100_000), ("ETH", 4_000), ("SOL", 200), ("XRP", 2))
        ],
        ignore_conflicts=True,
    )
    _, token = api_clients.create_api_client(
        name=f"bench-{run_tag}-ingest", scopes=["events", "reference"], actor=audit.Actor.system("bench"), now=now
    )
    return token


def _forget_counters() -> None:
    """The bench database is recreated on every run and account ids start again at 1, so order/cancel counts
    a previous run left in Redis would land on this run's accounts."""
    from backoffice.redis_client import get_redis, key

    client = get_redis()
    names = list(client.scan_iter(match=key("surv", "oc", "*"), count=10_000))
    for start in range(0, len(names), 10_000):
        client.delete(*names[start : start + 10_000])


def _start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _trades(run_tag: str, b: int) -> bytes:
    """A batch of distinct trades between random-looking pairs of accounts, a millisecond apart."""
    start = _start()
    items = []
    for k in range(BATCH):
        n = b * BATCH + k
        symbol = SYMBOLS[n % len(SYMBOLS)][0]
        items.append(
            {
                "trade_id": f"{run_tag}-T{n}",
                "symbol": symbol,
                "price": f"{100 + n % 97}.25",
                "qty": f"0.{n % 9973 + 1}",
                "buy_account_id": f"{run_tag}-A{(n * 7919) % ACCOUNTS}",
                "sell_account_id": f"{run_tag}-A{(n * 104729 + 1) % ACCOUNTS}",
                "buy_order_id": f"{run_tag}-B{n}",
                "sell_order_id": f"{run_tag}-S{n}",
                "aggressor": "buy" if n % 2 else "sell",
                "executed_at": (start + timedelta(milliseconds=n)).isoformat(),
            }
        )
    return orjson.dumps(items)


def _order_events(run_tag: str, b: int) -> bytes:
    start = _start()
    items = []
    for k in range(BATCH):
        n = b * BATCH + k
        items.append(
            {
                "event_id": f"{run_tag}-E{n}",
                "order_id": f"{run_tag}-O{n // 2}",
                "account_id": f"{run_tag}-A{(n * 7919) % ACCOUNTS}",
                "symbol": SYMBOLS[n % len(SYMBOLS)][0],
                "type": "cancelled" if n % 2 else "placed",
                "side": "buy" if n % 3 else "sell",
                "price": f"{100 + n % 97}.5",
                "qty": "1.5",
                "at": (start + timedelta(milliseconds=n)).isoformat(),
            }
        )
    return orjson.dumps(items)


def _post(http, path: str, body: bytes, *, accepted: int | None = None) -> float:
    response, seconds = timed(lambda: http.post(path, content=body, headers={"Content-Type": "application/json"}))
    expected = BATCH if accepted is None else accepted
    if response.status_code != 200 or response.json()["accepted"] != expected:
        raise SystemExit(f"POST {path} answered {response.status_code}: {response.text[:500]}")
    return seconds


# ---- the comparison: PostgreSQL alone ----------------------------------------------------------------------
@contextmanager
def _scratch_table():
    from django.db import connection

    with connection.cursor() as cursor:
        # Same columns and indexes as the trade table (LIKE copies the partitioned table's indexes).
        cursor.execute("CREATE TABLE bench_trade_scratch (LIKE trading_risk_trade INCLUDING ALL)")
    try:
        yield connection
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE bench_trade_scratch")


def _bare_copy(run_tag: str, batches: int) -> list[float]:
    """Seconds per COPY of each batch's rows (already resolved and valued) into the scratch table."""
    start, received = _start(), datetime.now(UTC).isoformat()
    with _scratch_table() as connection:
        times = []
        for b in range(batches):
            text = "".join(
                f"{run_tag}-T{n}\t{SYMBOLS[n % 4][0]}\t{100 + n % 97}.25\t0.{n % 9973 + 1}\t{n % ACCOUNTS + 1}\t"
                f"{(n + 1) % ACCOUNTS + 1}\t{n % 1000 + 1}\t{(n + 1) % 1000 + 1}\t{run_tag}-B{n}\t{run_tag}-S{n}\t"
                f"buy\t{(start + timedelta(milliseconds=n)).isoformat()}\t0.5\t{received}\n"
                for n in range(b * BATCH, (b + 1) * BATCH)
            )
            with connection.cursor() as cursor:
                copy = (
                    "COPY bench_trade_scratch (trade_id, symbol, price, qty, buy_account_id, sell_account_id, "
                    "buy_customer_id, sell_customer_id, buy_order_id, sell_order_id, aggressor, executed_at, "
                    "value_btc, received_at) FROM STDIN"
                )
                times.append(timed(lambda c=cursor, t=text, q=copy: c.cursor.copy_expert(q, io.StringIO(t)))[1])
        return times


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--scenario", NAME, *sys.argv[1:]]))
