"""Re-margining after a price move: 1,000,000 positions in 250,000 accounts (--quick: 100,000 in 25,000).

Four contracts — a linear perpetual on the default step limits, a linear perpetual with brackets, an inverse
perpetual with a step table and a dated future — and one position in each per account, loaded with COPY
(like the snapshots the engine sends, without the HTTP ingest, which is not what this measures), plus a
USDT balance per account and a stored HEALTHY class per book. A first re-margin at the loaded marks fills
the worker's arrays (the cold start, reported). Then every mark falls 1 %: the figure with the goal is
from the price batch being recorded to the changed classifications being committed. The consequences of
the transitions (notices, restrictions, alerts) follow in their own task and are timed separately.
Last, a further 3 % fall shows how the run grows with the number of books whose class changes.

Run alone: `python -m bench.margin [--quick]`.
"""

import io
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.harness import Context, Result, measured, scenario

NAME = "remargin"
CONTRACTS = (  # symbol, kind, base, quote, mark
    ("BTCUSDT-PERP", "PERPETUAL", "BTC", "USDT", Decimal(50000)),
    ("ETHUSDT-PERP", "PERPETUAL", "ETH", "USDT", Decimal(2500)),
    ("BTCUSD-PERP", "PERPETUAL", "BTC", "USD", Decimal(50000)),
    ("BTCUSDT-FUT", "FUTURE", "BTC", "USDT", Decimal(50400)),
)
LEVERAGES = (2, 3, 5, 5, 10, 10, 20, 25, 50)
MOVE = Decimal("0.99")
CRASH = Decimal("0.97")

_CUSTOMERS = """
INSERT INTO accounts_customer (external_id, type, name, country, email, phone, kyc_level, kyc_level_source,
    must_change_password, created_at, updated_at)
SELECT %(tag)s || '-C' || g, 'INDIVIDUAL', 'Bench ' || g, 'DE', 'b' || g || '@example.com', '+49 ' || g, 2, 'NONE',
    false, now(), now()
FROM generate_series(1, %(accounts)s) g
"""
_ACCOUNTS = """
INSERT INTO accounts_account (external_id, customer_id, kind, created_at, updated_at)
SELECT %(tag)s || '-A' || g, c.id, 'FUTURES', now(), now()
FROM generate_series(1, %(accounts)s) g JOIN accounts_customer c ON c.external_id = %(tag)s || '-C' || g
"""


@scenario(NAME, "re-margin 1M positions in 250k accounts after a 1 % price move (quick: 100k), goal 1 s")
def remargin(ctx: Context) -> list[Result]:
    accounts = 25_000 if ctx.quick else 250_000
    from django.utils import timezone

    from trading_risk import margin_engine, services

    now = timezone.now()
    _, loaded = _load(ctx.run_tag, accounts=accounts, now=now)
    margin_engine.reset_worker()
    cold = margin_engine.remargin(now=now)

    moved_at = now + timedelta(seconds=1)
    prices = [
        (
            i,
            services.InstrumentPriceIn(
                symbol, (mark * MOVE).quantize(Decimal("0.01")), (mark * MOVE).quantize(Decimal("0.01")), moved_at
            ),
        )
        for i, (symbol, _, _, _, mark) in enumerate(CONTRACTS)
    ]
    from trading_risk.services import record_prices

    started = time.perf_counter()
    record_prices(asset_prices=[], instrument_prices=prices, actor=margin_engine.ACTOR, now=moved_at)
    recorded = time.perf_counter() - started
    run = margin_engine.remargin(now=moved_at)
    total = time.perf_counter() - started
    again, _ = _timed(lambda: margin_engine.remargin(now=moved_at))
    consequences, seconds = _timed(lambda: _consequences(moved_at))
    crash_at = moved_at + timedelta(seconds=1)
    crash = [
        (i, services.InstrumentPriceIn(p.symbol, p.index_price * CRASH, p.mark_price * CRASH, crash_at))
        for i, p in prices
    ]
    started = time.perf_counter()
    record_prices(asset_prices=[], instrument_prices=crash, actor=margin_engine.ACTOR, now=crash_at)
    big = margin_engine.remargin(now=crash_at)
    crashed = time.perf_counter() - started
    positions = accounts * len(CONTRACTS)
    phases = ", ".join(f"{k} {v:.3f}" for k, v in run.seconds.items())
    return [
        measured(NAME, f"load {positions:,} positions + {accounts:,} balances with COPY", loaded, "s"),
        measured(
            NAME,
            f"cold start: first re-margin of {cold.books:,} books (arrays filled)",
            sum(cold.seconds.values()),
            "s",
        ),
        measured(NAME, "price batch recorded", recorded, "s"),
        measured(
            NAME,
            f"price move → persisted classes, {positions:,} positions ({run.candidates:,} candidates, "
            f"{run.written:,} written; {phases})",
            total,
            "s",
            at_most=1.0,
        ),
        measured(NAME, "the same marks again (nothing changes)", sum(again.seconds.values()), "s"),
        measured(
            NAME,
            f"a further 3 % fall: {big.written:,} classes change ({big.candidates:,} candidates; "
            + ", ".join(f"{k} {v:.3f}" for k, v in big.seconds.items())
            + ")",
            crashed,
            "s",
        ),
        measured(NAME, f"consequences of {consequences:,} transitions (the move's and the cold start's)", seconds, "s"),
    ]


def _timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def _consequences(now) -> int:
    """Act on up to 1,000 transitions (the rest wait for the next task, as in production)."""
    from trading_risk import margin_engine

    return margin_engine.apply_consequences(now=now, limit=1000)


def _load(tag: str, *, accounts: int, now: datetime):
    from django.db import connection

    from backoffice.audit import Actor
    from trading_risk import risk_limits, services
    from trading_risk.models import AssetPrice

    started = time.perf_counter()
    actor = Actor.system("bench")
    instruments = {}
    for symbol, kind, base, quote, mark in CONTRACTS:
        listed = datetime(2024, 1, 1, tzinfo=UTC)
        data = services.InstrumentData(
            kind=kind,
            base=base,
            quote=quote,
            listed_at=listed,
            expires_at=now + timedelta(days=60) if kind == "FUTURE" else None,
        )
        instruments[symbol], _ = services.upsert_instrument(symbol=symbol, data=data, actor=actor, now=now)
        services.record_prices(
            asset_prices=[],
            instrument_prices=[(0, services.InstrumentPriceIn(symbol, mark, mark, now))],
            actor=actor,
            now=now,
        )
    AssetPrice.objects.bulk_create(
        [
            AssetPrice(asset=a, usd=Decimal(u), at=now - timedelta(hours=1), received_at=now)
            for a, u in (("BTC", "50000"), ("ETH", "2500"), ("USDT", "1"))
        ]
    )
    brackets = [
        {"floor": f, "cap": c, "maintenance_rate": m, "initial_rate": i}
        for f, c, m, i in (
            ("0", "50000", "0.004", "0.008"),
            ("50000", "250000", "0.005", "0.01"),
            ("250000", "1000000", "0.01", "0.02"),
            ("1000000", "10000000", "0.025", "0.05"),
        )
    ]
    risk_limits.create_table(
        payload={"symbol": "ETHUSDT-PERP", "model": "BRACKET", "settlement": "LINEAR", "brackets": brackets},
        actor=actor,
        now=now - timedelta(minutes=1),
    )
    risk_limits.create_table(
        payload={
            "symbol": "BTCUSD-PERP",
            "model": "STEP",
            "settlement": "INVERSE",
            "contract_size": "100",
            "base_limit": "200",
            "step": "150",
            "base_maintenance_rate": "0.005",
            "base_initial_rate": "0.01",
            "step_increment": "0.005",
        },
        actor=actor,
        now=now - timedelta(minutes=1),
    )
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMERS, {"tag": tag, "accounts": accounts})
        cursor.execute(_ACCOUNTS, {"tag": tag, "accounts": accounts})
        cursor.execute("SELECT min(id) FROM accounts_account WHERE external_id LIKE %s", [f"{tag}-A%"])
        first = cursor.fetchone()[0]
        raw = cursor.cursor
        raw.copy_expert(
            "COPY trading_risk_position (account_id, instrument_id, side, qty, entry_price, margin, at, received_at, "
            "maintenance_amount) FROM STDIN",
            _positions(first, accounts, instruments, now),
        )
        raw.copy_expert(
            "COPY trading_risk_balance (account_id, asset, total, available, at, received_at) FROM STDIN",
            _balances(first, accounts, now),
        )
        raw.copy_expert(
            "COPY trading_risk_accountmargin (account_id, book, equity, maintenance_margin, initial_margin, "
            "warning_line, notional, classification, computed_at, classified_at) FROM STDIN",
            _margins(first, accounts, now),
        )
        cursor.execute(
            "ANALYZE trading_risk_position; ANALYZE trading_risk_balance; ANALYZE trading_risk_accountmargin"
        )
    return instruments, time.perf_counter() - started


def _positions(first: int, accounts: int, instruments: dict, now: datetime) -> io.StringIO:
    """One position per account and contract: mostly isolated at 2–50x, one in twenty on cross margin."""
    rng = random.Random(11)
    at = (now - timedelta(minutes=1)).isoformat()  # received a while before the move
    lines = []
    for account in range(first, first + accounts):
        for symbol, _, _, quote, mark in CONTRACTS:
            side = "LONG" if rng.random() < 0.6 else "SHORT"
            entry = mark * Decimal(1 + rng.uniform(-0.005, 0.005))
            if quote == "USD":  # inverse: qty in 100 USD contracts, margin in BTC
                qty = rng.choice((10, 50, 100, 500, 2000))
                notional = Decimal(qty * 100) / entry
            else:
                qty = Decimal(rng.choice(("0.01", "0.1", "0.5", "1", "3"))) * (20 if symbol.startswith("ETH") else 1)
                notional = qty * entry
            cross = rng.random() < 0.05
            wallet = Decimal(0) if cross else notional / rng.choice(LEVERAGES)
            lines.append(
                f"{account}\t{instruments[symbol].pk}\t{side}\t{qty}\t{entry:.2f}\t{wallet:.8f}\t{at}\t{at}\t0\n"
            )
    return io.StringIO("".join(lines))


def _balances(first: int, accounts: int, now: datetime) -> io.StringIO:
    rng = random.Random(12)
    at = (now - timedelta(minutes=1)).isoformat()  # received a while before the move
    return io.StringIO(
        "".join(
            f"{a}\tUSDT\t{(v := rng.randint(500, 20000))}\t{v}\t{at}\t{at}\n" for a in range(first, first + accounts)
        )
    )


def _margins(first: int, accounts: int, now: datetime) -> io.StringIO:
    at = (now - timedelta(hours=1)).isoformat()
    return io.StringIO(
        "".join(
            f"{a}\t{book}\t0\t0\t0\t0\t0\tHEALTHY\t{at}\t{at}\n"
            for a in range(first, first + accounts)
            for book in ("PERPETUAL", "FUTURE")
        )
    )


if __name__ == "__main__":
    from bench.__main__ import main

    sys.exit(main(["--scenario", NAME, *sys.argv[1:]]))
