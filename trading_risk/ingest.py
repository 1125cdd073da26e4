"""Trades and order events in: the hottest path of the product.

A batch is checked in Python against cached reference data, copied with COPY into a temporary staging
table, then moved set-based into the partitioned event table. Idempotency: the natural ID goes into a
small key table first (INSERT … ON CONFLICT DO NOTHING), with a digest of the payload, so a re-sent item
is recognised as a duplicate (same digest) or a conflict (different digest → 409, nothing stored).

Once committed, order events feed the frequent order/cancel counter (trading_risk.ladder) in the same
request, so a restriction is in force when the engine gets its answer.
"""

import io
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from django.db import connection, transaction

from backoffice.errors import DomainError, InvalidInput
from trading_risk import ladder
from trading_risk.models import Instrument

_CACHE_SECONDS = 5.0


class IngestConflict(DomainError):
    """Items were already received with a different payload."""

    code = "idempotency_conflict"


class TradeIn(Protocol):
    """A validated trade as the API decoded it: IDs, symbol and decimal strings already checked."""

    trade_id: str
    symbol: str
    price: str
    qty: str
    buy_account_id: str
    sell_account_id: str
    buy_order_id: str
    sell_order_id: str
    aggressor: str
    executed_at: datetime


class OrderEventIn(Protocol):
    """A validated order event as the API decoded it."""

    event_id: str
    order_id: str
    account_id: str
    symbol: str
    type: str
    side: str
    price: str
    qty: str
    at: datetime


# ---- reference data, cached per process ------------------------------------------------------------------
class _Accounts:
    """external account ID → (id, customer id). An account never changes owner, so entries never go stale."""

    def __init__(self):
        self.known: dict[str, tuple[int, int]] = {}

    def resolve(self, external_ids: set[str]) -> dict[str, tuple[int, int]]:
        missing = [e for e in external_ids if e not in self.known]
        if missing:
            if len(self.known) > 2_000_000:
                self.known.clear()
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT external_id, id, customer_id FROM accounts_account WHERE external_id = ANY(%s)", [missing]
                )
                self.known.update({e: (i, c) for e, i, c in cursor.fetchall()})
        return self.known


class _Instruments:
    """symbol → base asset, re-read every few seconds so a new listing is accepted promptly."""

    def __init__(self):
        self.bases: dict[str, str] = {}
        self.loaded_at = float("-inf")

    def resolve(self, symbols: set[str]) -> dict[str, str]:
        stale = time.monotonic() - self.loaded_at > _CACHE_SECONDS
        if stale or not symbols <= self.bases.keys():
            self.bases = dict(Instrument.objects.values_list("symbol", "base"))
            self.loaded_at = time.monotonic()
        return self.bases


accounts_cache = _Accounts()
instruments_cache = _Instruments()


def clear_caches() -> None:
    """Forget cached accounts and instruments (tests create them between requests)."""
    accounts_cache.known.clear()
    instruments_cache.loaded_at = float("-inf")


def _unknown(index_values: Iterable[tuple[int, str, str]], known) -> list[dict]:
    return [
        {"index": i, "field": field, "message": "unknown account" if "account" in field else "unknown instrument"}
        for i, field, value in index_values
        if value not in known
    ]


# ---- trades -------------------------------------------------------------------------------------------
_TRADE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS trade_stage (
    idx int, trade_id varchar(64) COLLATE "C", symbol varchar(32), price numeric(38, 18), qty numeric(38, 18),
    buy_account_id bigint, sell_account_id bigint, buy_customer_id bigint, sell_customer_id bigint,
    buy_order_id varchar(64), sell_order_id varchar(64), aggressor varchar(4), executed_at timestamptz,
    btc_rate numeric
) ON COMMIT DELETE ROWS
"""
_TRADE_COLUMNS = (
    "idx, trade_id, symbol, price, qty, buy_account_id, sell_account_id, buy_customer_id, "
    "sell_customer_id, buy_order_id, sell_order_id, aggressor, executed_at, btc_rate"
)
# Everything the sender chose, hashed by value: numerics and instants hash equal however they were written.
_TRADE_DIGEST = (
    "hash_record_extended(ROW(s.symbol, s.price, s.qty, s.buy_account_id, s.sell_account_id, s.buy_order_id, "
    "s.sell_order_id, s.aggressor, s.executed_at), 0)"
)
_TRADE_INSERT = f"""
WITH new_keys AS (
    INSERT INTO trading_risk_tradekey (trade_id, executed_at, digest)
    SELECT s.trade_id, s.executed_at, {_TRADE_DIGEST} FROM trade_stage s ORDER BY s.trade_id
    ON CONFLICT (trade_id) DO NOTHING
    RETURNING trade_id
)
INSERT INTO trading_risk_trade (trade_id, symbol, price, qty, buy_account_id, sell_account_id, buy_customer_id,
    sell_customer_id, buy_order_id, sell_order_id, aggressor, executed_at, value_btc, received_at)
SELECT s.trade_id, s.symbol, s.price, s.qty, s.buy_account_id, s.sell_account_id, s.buy_customer_id,
    s.sell_customer_id, s.buy_order_id, s.sell_order_id, s.aggressor, s.executed_at, s.qty * s.btc_rate, %s
FROM trade_stage s JOIN new_keys USING (trade_id)
"""
_TRADE_CONFLICTS = f"""
SELECT s.idx FROM trade_stage s JOIN trading_risk_tradekey k USING (trade_id) WHERE k.digest <> {_TRADE_DIGEST}
ORDER BY s.idx
"""


def ingest_trades(*, trades: list[TradeIn], now: datetime) -> tuple[int, int]:
    """Store a batch of trades; returns (accepted, duplicates). All or nothing: 400 for unknown accounts or
    symbols, 409 when a trade ID comes back with another payload."""
    accounts = accounts_cache.resolve({t.buy_account_id for t in trades} | {t.sell_account_id for t in trades})
    bases = instruments_cache.resolve({t.symbol for t in trades})
    errors = _unknown(((i, "symbol", t.symbol) for i, t in enumerate(trades)), bases)
    errors += _unknown(
        ((i, f, getattr(t, f)) for i, t in enumerate(trades) for f in ("buy_account_id", "sell_account_id")), accounts
    )
    if errors:
        raise InvalidInput(
            f"{len({e['index'] for e in errors})} item(s) are invalid; nothing was stored.",
            details=sorted(errors, key=lambda e: e["index"]),
        )
    rates = _btc_rates(trades, bases)
    rows = io.StringIO()
    rows.writelines(_trade_line(i, t, accounts, rates[i]) for i, t in enumerate(trades))
    rows.seek(0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_TRADE_STAGE)
        cursor.cursor.copy_expert(f"COPY trade_stage ({_TRADE_COLUMNS}) FROM STDIN", rows)
        cursor.execute(_TRADE_INSERT, [now])
        accepted = cursor.rowcount
        if accepted < len(trades):
            _refuse_conflicts(cursor, _TRADE_CONFLICTS, "trade_id")
    return accepted, len(trades) - accepted


def _trade_line(i: int, t: TradeIn, accounts: dict, rate: str) -> str:
    buyer, seller = accounts[t.buy_account_id], accounts[t.sell_account_id]
    return (
        f"{i}\t{t.trade_id}\t{t.symbol}\t{t.price}\t{t.qty}\t{buyer[0]}\t{seller[0]}\t{buyer[1]}\t{seller[1]}\t"
        f"{t.buy_order_id}\t{t.sell_order_id}\t{t.aggressor}\t{t.executed_at.isoformat()}\t{rate}\n"
    )


def _refuse_conflicts(cursor, sql: str, field: str) -> None:
    cursor.execute(sql)
    conflicts = [row[0] for row in cursor.fetchall()]
    if conflicts:
        raise IngestConflict(
            f"{len(conflicts)} item(s) were already received with a different payload; nothing was stored.",
            details=[
                {"index": i, "field": field, "message": "already received with a different payload"} for i in conflicts
            ],
        )


def _btc_rates(trades: list[TradeIn], bases: dict[str, str]) -> list[str]:
    """Each trade's BTC per unit of its base asset, from the latest reference prices at or before its time
    ('\\N' when unpriced: the value is stored as NULL and counted by no volume rule). The database
    multiplies by qty, so Python never does decimal arithmetic per trade."""
    from trading_risk.selectors import PriceSeries

    assets = {bases[t.symbol] for t in trades} | {"BTC"}
    start, end = min(t.executed_at for t in trades), max(t.executed_at for t in trades)
    series = PriceSeries.load(assets, start=start, end=end)
    if series.constant_between(start, end):  # the usual case: no new price inside a batch's few seconds
        rates = {asset: series.btc_rate_text(asset, end) for asset in assets}
        return [rates[bases[t.symbol]] for t in trades]
    return [series.btc_rate_text(bases[t.symbol], t.executed_at) for t in trades]


# ---- order events --------------------------------------------------------------------------------------
_EVENT_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS order_event_stage (
    idx int, event_id varchar(64) COLLATE "C", order_id varchar(64), account_id bigint, symbol varchar(32),
    type varchar(9), side varchar(4), price numeric(38, 18), qty numeric(38, 18), at timestamptz
) ON COMMIT DELETE ROWS
"""
_EVENT_COLUMNS = "idx, event_id, order_id, account_id, symbol, type, side, price, qty, at"
_EVENT_DIGEST = "hash_record_extended(ROW(s.order_id, s.account_id, s.symbol, s.type, s.side, s.price, s.qty, s.at), 0)"
# The inserted events come back counted per (account, symbol, minute): what the order/cancel counter needs.
_EVENT_INSERT = f"""
WITH new_keys AS (
    INSERT INTO trading_risk_ordereventkey (event_id, at, digest)
    SELECT s.event_id, s.at, {_EVENT_DIGEST} FROM order_event_stage s ORDER BY s.event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), inserted AS (
    INSERT INTO trading_risk_orderevent (event_id, order_id, account_id, symbol, type, side, price, qty, at,
        received_at)
    SELECT s.event_id, s.order_id, s.account_id, s.symbol, s.type, s.side, s.price, s.qty, s.at, %s
    FROM order_event_stage s JOIN new_keys USING (event_id)
    RETURNING account_id, symbol, at
)
SELECT account_id, symbol, floor(extract(epoch FROM at) / 60)::bigint AS minute, count(*), max(at)
FROM inserted GROUP BY 1, 2, 3
"""
_EVENT_CONFLICTS = f"""
SELECT s.idx FROM order_event_stage s JOIN trading_risk_ordereventkey k USING (event_id)
WHERE k.digest <> {_EVENT_DIGEST} ORDER BY s.idx
"""


def ingest_order_events(*, events: list[OrderEventIn], now: datetime) -> tuple[int, int]:
    """Store a batch of order events and climb the order/cancel ladder where they cross its line;
    returns (accepted, duplicates). All or nothing, like trades."""
    accounts = accounts_cache.resolve({e.account_id for e in events})
    bases = instruments_cache.resolve({e.symbol for e in events})
    errors = _unknown(((i, "symbol", e.symbol) for i, e in enumerate(events)), bases)
    errors += _unknown(((i, "account_id", e.account_id) for i, e in enumerate(events)), accounts)
    if errors:
        raise InvalidInput(
            f"{len({e['index'] for e in errors})} item(s) are invalid; nothing was stored.",
            details=sorted(errors, key=lambda e: e["index"]),
        )
    rows = io.StringIO()
    rows.writelines(
        f"{i}\t{e.event_id}\t{e.order_id}\t{accounts[e.account_id][0]}\t{e.symbol}\t{e.type}\t{e.side}\t{e.price}\t"
        f"{e.qty}\t{e.at.isoformat()}\n"
        for i, e in enumerate(events)
    )
    rows.seek(0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_EVENT_STAGE)
        cursor.cursor.copy_expert(f"COPY order_event_stage ({_EVENT_COLUMNS}) FROM STDIN", rows)
        cursor.execute(_EVENT_INSERT, [now])
        buckets = cursor.fetchall()
        accepted = sum(row[3] for row in buckets)
        if accepted < len(events):
            _refuse_conflicts(cursor, _EVENT_CONFLICTS, "event_id")
    # After the commit, so whichever batch counts last sees every other batch's events (see ladder.py).
    ladder.count_events(buckets=buckets, now=now)
    return accepted, len(events) - accepted
