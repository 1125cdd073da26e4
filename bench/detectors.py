"""Surveillance detectors over a full day: 10 million trades and 10 million order events (--quick: 1 + 1).

Rows are generated inside PostgreSQL with generate_series (no HTTP: this measures the detectors, not
ingestion), with a sprinkling of self-trades, wash trades between accounts of one owner and heavy
accounts so every detector has findings to act on. Then the daily run (every detector, the activity
rollup and the behaviour-anomaly rule) runs once, timed per detector, and once more to show that a
rerun is skipped.

Run alone: `python -m bench.detectors [--quick]`.
"""

import sys
import time
from datetime import UTC, datetime, timedelta

from bench.harness import Context, Result, measured, scenario

NAME = "detectors"
ACCOUNTS = 20_000  # two accounts per customer
SYMBOLS = "ARRAY['BTCUSDT','ETHUSDT','SOLUSDT','XRPUSDT']"

_CUSTOMERS = """
INSERT INTO accounts_customer (external_id, type, name, country, email, phone, kyc_level, kyc_level_source,
    must_change_password, created_at, updated_at)
SELECT %(tag)s || '-C' || g, 'INDIVIDUAL', 'Bench ' || g, 'DE', 'b' || g || '@example.com', '+49 ' || g, 0, 'NONE',
    false, now(), now()
FROM generate_series(1, %(customers)s) g
"""
_ACCOUNTS = """
INSERT INTO accounts_account (external_id, customer_id, kind, created_at, updated_at)
SELECT %(tag)s || '-A' || g, c.id, 'SPOT', now(), now()
FROM generate_series(1, %(accounts)s) g JOIN accounts_customer c ON c.external_id = %(tag)s || '-C' || ((g + 1) / 2)
"""
# Mostly unrelated pairs with small values; every 10,007th trade a self-trade and every 10,009th a wash trade
# between the two accounts of one customer, worth 50 BTC each, concentrated on 10 customers; every 1,009th a
# 25 BTC trade among 20 heavy accounts (excessive trading). Values scale up in --quick so the findings stay.
_TRADES = f"""
INSERT INTO trading_risk_trade (trade_id, symbol, price, qty, buy_account_id, sell_account_id, buy_customer_id,
    sell_customer_id, buy_order_id, sell_order_id, aggressor, executed_at, value_btc, received_at)
SELECT %(tag)s || '-T' || g, ({SYMBOLS})[1 + g %% 4], 100 + g %% 97, q.qty, b.id, s.id, b.customer_id, s.customer_id,
    'B' || g, 'S' || g, CASE WHEN g %% 2 = 0 THEN 'buy' ELSE 'sell' END,
    %(start)s::timestamptz + (g * 86400.0 / %(rows)s) * interval '1 second', q.value, now()
FROM generate_series(1::bigint, %(rows)s) g
CROSS JOIN LATERAL (SELECT
    CASE WHEN g %% 10007 = 0 THEN %(first)s + 2 * ((g / 10007) %% 10)
         WHEN g %% 10009 = 0 THEN %(first)s + 2 * ((g / 10009) %% 10) + 1
         WHEN g %% 1009 = 0 THEN %(first)s + 1000 + (g / 1009) %% 20
         ELSE %(first)s + (g * 7919) %% %(accounts)s END AS buyer,
    CASE WHEN g %% 10007 = 0 THEN %(first)s + 2 * ((g / 10007) %% 10)
         WHEN g %% 10009 = 0 THEN %(first)s + 2 * ((g / 10009) %% 10)
         WHEN g %% 1009 = 0 THEN %(first)s + 1000 + (g / 1009 + 7) %% 20
         ELSE %(first)s + (g * 104729 + 1) %% %(accounts)s END AS seller) p
CROSS JOIN LATERAL (SELECT CASE WHEN g %% 10007 = 0 OR g %% 10009 = 0 THEN 50.0 * %(scale)s
                                WHEN g %% 1009 = 0 THEN 25.0 * %(scale)s
                                ELSE 0.05005 END AS value,
                           0.001 * (1 + g %% 1000) AS qty) q
JOIN accounts_account b ON b.id = p.buyer
JOIN accounts_account s ON s.id = p.seller
"""
_EVENTS = f"""
INSERT INTO trading_risk_orderevent (event_id, order_id, account_id, symbol, type, side, price, qty, at, received_at)
SELECT %(tag)s || '-E' || g, 'O' || (g / 2), %(first)s + (g * 7919) %% %(accounts)s, ({SYMBOLS})[1 + g %% 4],
    CASE WHEN g %% 2 = 0 THEN 'placed' ELSE 'cancelled' END, 'buy', 100, 1,
    %(start)s::timestamptz + (g * 86400.0 / %(rows)s) * interval '1 second', now()
FROM generate_series(1::bigint, %(rows)s) g
"""
# A 30-day history for every account like an ordinary day of this data (volume ≈ 2 * rows / accounts trades
# of 0.05005 BTC, order events ≈ rows / accounts, ±10 %%), so only the sprinkled accounts stand out as anomalies.
_HISTORY = """
INSERT INTO trading_risk_accountdailyactivity (account_id, day, volume_btc, trades, order_events)
SELECT a.id, %(day)s::date - d, (2.0 * %(rows)s / %(accounts)s) * 0.05005 * (0.9 + (d %% 5) * 0.05),
    2 * %(rows)s / %(accounts)s, (%(rows)s / %(accounts)s) * (0.9 + (d %% 5) * 0.05)
FROM accounts_account a, generate_series(1, 30) d WHERE a.id >= %(first)s
"""


@scenario(NAME, "daily surveillance run over 10M trades + 10M order events (quick: 1M + 1M), generated in SQL")
def detectors(ctx: Context) -> list[Result]:
    rows = 1_000_000 if ctx.quick else 10_000_000
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    window_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    generated = _generate(ctx.run_tag, rows=rows, day=day)
    from django.utils import timezone

    from trading_risk import detectors as surveillance_detectors
    from trading_risk.models import DetectorRun

    started = time.perf_counter()
    findings = surveillance_detectors.run_detectors(
        detectors=surveillance_detectors.DAILY, window_end=window_end, now=timezone.now()
    )
    total = time.perf_counter() - started
    rerun = time.perf_counter()
    surveillance_detectors.run_detectors(
        detectors=surveillance_detectors.DAILY, window_end=window_end, now=timezone.now()
    )
    rerun = time.perf_counter() - rerun
    runs = {r.detector: r for r in DetectorRun.objects.filter(window_end=window_end)}
    millions = rows / 1_000_000
    scanned = {"daily_activity": 2 * millions, "behaviour_anomaly": millions}
    results = [measured(NAME, f"generate {rows:,} trades + {rows:,} order events", generated, "s")]
    for name, run in runs.items():
        per_million = run.seconds / scanned.get(name, millions)
        what = "accounts rolled up" if name == "daily_activity" else "findings"
        label = f"{name} ({findings.get(name, 0)} {what})"
        results.append(measured(NAME, label, per_million, "s per M rows", at_most=2))
    results += [
        measured(NAME, "full daily run", total, "s", at_most=120 if not ctx.quick else 12),
        measured(NAME, "rerun of a finished day", rerun, "s"),
    ]
    return results


def _generate(tag: str, *, rows: int, day) -> float:
    from django.db import connection

    from trading_risk import partitions

    started = time.perf_counter()
    partitions.ensure_partitions(start=day, days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with connection.cursor() as cursor:
        params = {
            "tag": tag,
            "customers": ACCOUNTS // 2,
            "accounts": ACCOUNTS,
            "rows": rows,
            "start": start,
            "day": day,
            "scale": 10_000_000 / rows,
        }
        cursor.execute(_CUSTOMERS, params)
        cursor.execute(_ACCOUNTS, params)
        cursor.execute("SELECT min(id) FROM accounts_account WHERE external_id LIKE %s", [f"{tag}-A%"])
        params["first"] = cursor.fetchone()[0]
        cursor.execute(_TRADES, params)
        cursor.execute(_EVENTS, params)
        cursor.execute(_HISTORY, params)
        cursor.execute(
            "ANALYZE trading_risk_trade; ANALYZE trading_risk_orderevent; ANALYZE trading_risk_accountdailyactivity"
        )
    return time.perf_counter() - started


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--scenario", NAME, *sys.argv[1:]]))
