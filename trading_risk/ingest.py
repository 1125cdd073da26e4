"""Trades and order events in: the hottest path of the product.

A batch is decoded by msgspec into structs of plain strings and checked column by column (one regular
expression over all the values of a kind of field), then checked against cached reference data, streamed
with COPY into a temporary staging table (built from the same columns, a chunk at a time) and moved
set-based into the partitioned event table.

Idempotency: the natural ID goes into a small key table with a digest of the payload, so a re-sent item
is recognised as a duplicate (same digest) or a conflict (different digest → 409, nothing stored). The
usual batch is all new, so its keys are first inserted with plain INSERTs inside a savepoint — the
unique index checks each key once, where ON CONFLICT probes it before inserting — and its rows follow
without a join. Only when a key already exists does the savepoint roll back and the batch go through
INSERT … ON CONFLICT DO NOTHING, duplicates counted and conflicts refused.

Once committed, order events feed the frequent order/cancel counter (trading_risk.ladder) in the same
request, so a restriction is in force when the engine gets its answer.
"""

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from operator import attrgetter
from typing import Literal, Protocol

import msgspec
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from backoffice.api import ItemSpec, Timestamp, decode_batch, request_body
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


class Columns:
    """A batch's fields as lists in item order, each gathered once: the checks and the COPY read the same."""

    def __init__(self, items: Sequence):
        self.items = items
        self._lists: dict[str, list] = {}

    def __getitem__(self, name: str) -> list:
        values = self._lists.get(name)
        if values is None:
            values = self._lists[name] = list(map(attrgetter(name), self.items))
        return values


# ---- decoding: the fast path for batches of 10,000 ---------------------------------------------------------
# Per-field regex constraints cost msgspec one `re` call per value (80,000 per batch of trades). Here the
# batch is decoded with plain strings and each kind of field is checked with one regex over all its values
# joined by newlines (the line count guards against a value smuggling a newline in). Anything wrong, and
# the batch goes through backoffice.api.decode_batch, which names every bad item as {"index", "field",
# "message"} exactly as the other batch endpoints do. The patterns are those of backoffice.api's Id,
# DecimalString and Symbol.
_IDS = re.compile(r"(?:[A-Za-z0-9._:-]{1,64}\n)*[A-Za-z0-9._:-]{1,64}")
_DECIMALS = re.compile(r"(?:[0-9]{1,20}(?:\.[0-9]{1,18})?\n)*[0-9]{1,20}(?:\.[0-9]{1,18})?")
_SYMBOLS = re.compile(r"(?:[A-Z0-9._-]{1,32}\n)*[A-Z0-9._-]{1,32}")
# A decimal that already matched is zero exactly when it has no digit but 0 (searched in "\n"-framed text).
_ZERO = re.compile(r"\n[0.]+\n")


# gc=False: these hold only strings and datetimes, so the collector need not track 10,000 of them per batch.
class TradeRow(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    trade_id: str
    symbol: str
    price: str
    qty: str
    buy_account_id: str
    sell_account_id: str
    buy_order_id: str
    sell_order_id: str
    aggressor: Literal["buy", "sell"]
    executed_at: Timestamp


class OrderEventRow(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    event_id: str
    order_id: str
    account_id: str
    symbol: str
    type: Literal["placed", "cancelled"]
    side: Literal["buy", "sell"]
    price: str
    qty: str
    at: Timestamp


@dataclass(frozen=True)
class _Gate:
    decoder: msgspec.json.Decoder
    patterns: tuple[tuple[re.Pattern, tuple[str, ...]], ...]
    positive: tuple[str, ...]  # decimal fields that must be above zero
    key: str  # the natural ID, unique within a batch


_TRADE_GATE = _Gate(
    msgspec.json.Decoder(list[TradeRow]),
    (
        (_IDS, ("trade_id", "buy_account_id", "sell_account_id", "buy_order_id", "sell_order_id")),
        (_DECIMALS, ("price", "qty")),
        (_SYMBOLS, ("symbol",)),
    ),
    positive=("price", "qty"),
    key="trade_id",
)
_ORDER_EVENT_GATE = _Gate(
    msgspec.json.Decoder(list[OrderEventRow]),
    ((_IDS, ("event_id", "order_id", "account_id")), (_DECIMALS, ("price", "qty")), (_SYMBOLS, ("symbol",))),
    positive=("qty",),
    key="event_id",
)


def decode_trades(request, *, spec: ItemSpec) -> tuple[list[TradeIn], Columns]:
    """A batch of trades and its columns, or the 400 `spec` describes (nothing is stored either way)."""
    return _decode(request, _TRADE_GATE, spec)


def decode_order_events(request, *, spec: ItemSpec) -> tuple[list[OrderEventIn], Columns]:
    """A batch of order events and its columns, or the 400 `spec` describes."""
    return _decode(request, _ORDER_EVENT_GATE, spec)


def _decode(request, gate: _Gate, spec: ItemSpec) -> tuple[list, Columns]:
    try:
        items = gate.decoder.decode(request_body(request))
    except (msgspec.ValidationError, msgspec.DecodeError):
        items = None
    if items is not None:
        columns = Columns(items)
        if _passes(items, columns, gate):
            return items, columns
    items = decode_batch(request, spec)  # names every bad item; returns the items if the gate was too strict
    return items, Columns(items)


def _passes(items: list, columns: Columns, gate: _Gate) -> bool:
    if not 0 < len(items) <= settings.API_MAX_BATCH_ITEMS:
        return False
    for pattern, names in gate.patterns:
        text = "\n".join(chain.from_iterable(columns[name] for name in names))
        if text.count("\n") != len(items) * len(names) - 1 or not pattern.fullmatch(text):
            return False
    positive = "\n".join(chain.from_iterable(columns[name] for name in gate.positive))
    if _ZERO.search(f"\n{positive}\n"):
        return False
    return len(set(columns[gate.key])) == len(items)


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


def _unknown(columns: Columns, fields: tuple[str, ...], values: set[str], known, message: str) -> list[dict]:
    """Items whose `fields` hold a value not in `known`; `values` are all those fields' distinct values, so
    the usual batch, with every value known, costs one set comparison."""
    if known.keys() >= values:
        return []
    return [
        {"index": i, "field": field, "message": message}
        for field in fields
        for i, value in enumerate(columns[field])
        if value not in known
    ]


def _refuse_unknown(errors: list[dict]) -> None:
    if errors:
        raise InvalidInput(
            f"{len({e['index'] for e in errors})} item(s) are invalid; nothing was stored.",
            details=sorted(errors, key=lambda e: e["index"]),
        )


def _rfc3339(times: list[datetime]) -> list[str]:
    """Instants as COPY text, encoded by msgspec in one call (isoformat per value costs ten times more)."""
    return msgspec.json.encode(times).decode()[2:-2].split('","')


class _CopyLines:
    """COPY text from columns of strings that need no escaping (IDs, symbols and decimals were checked
    against patterns without tabs, newlines or backslashes), built a chunk of lines per read: PostgreSQL
    parses one chunk while the next is built."""

    def __init__(self, columns: Iterable[Iterable[str]]):
        self._lines = map("\t".join, zip(*columns, strict=True))

    def read(self, size: int = -1) -> bytes:
        lines = list(islice(self._lines, _COPY_LINES))
        return "\n".join(lines).encode() + b"\n" if lines else b""


_COPY_LINES = 500


def _stage(cursor, create: str, table: str, columns: str, text: _CopyLines) -> None:
    cursor.execute(create)
    cursor.cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", text)


def _all_keys_new(cursor, sql: str) -> bool:
    """Insert the batch's keys with plain INSERTs in a savepoint: True if every key was new; False, with
    nothing inserted, as soon as one key already exists."""
    try:
        with transaction.atomic():
            cursor.execute(sql)
        return True
    except IntegrityError:
        return False


def _refuse_conflicts(cursor, sql: str, field: str, ids: list[str]) -> None:
    cursor.execute(sql)
    conflicting = {row[0] for row in cursor.fetchall()}
    if conflicting:
        indexes = [i for i, value in enumerate(ids) if value in conflicting]
        raise IngestConflict(
            f"{len(indexes)} item(s) were already received with a different payload; nothing was stored.",
            details=[
                {"index": i, "field": field, "message": "already received with a different payload"} for i in indexes
            ],
        )


# ---- trades -------------------------------------------------------------------------------------------
# Named apart from earlier shapes of the staging table, which a long-lived connection may still hold.
_TRADE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS trade_batch (
    trade_id varchar(64) COLLATE "C", symbol varchar(32), price numeric(38, 18), qty numeric(38, 18),
    buy_account_id bigint, buy_customer_id bigint, sell_account_id bigint, sell_customer_id bigint,
    buy_order_id varchar(64), sell_order_id varchar(64), aggressor varchar(4), executed_at timestamptz,
    btc_rate numeric
) ON COMMIT DELETE ROWS
"""
_TRADE_COLUMNS = (
    "trade_id, symbol, price, qty, buy_account_id, buy_customer_id, sell_account_id, sell_customer_id, "
    "buy_order_id, sell_order_id, aggressor, executed_at, btc_rate"
)
# Everything the sender chose, hashed by value: numerics and instants hash equal however they were written.
# The column types and their order are part of every stored digest: changing them turns re-sent items into
# conflicts.
_TRADE_DIGEST = (
    "hash_record_extended(ROW(s.symbol, s.price, s.qty, s.buy_account_id, s.sell_account_id, s.buy_order_id, "
    "s.sell_order_id, s.aggressor, s.executed_at), 0)"
)
_TRADE_TARGET = """
INSERT INTO trading_risk_trade (trade_id, symbol, price, qty, buy_account_id, sell_account_id, buy_customer_id,
    sell_customer_id, buy_order_id, sell_order_id, aggressor, executed_at, value_btc, received_at)
SELECT s.trade_id, s.symbol, s.price, s.qty, s.buy_account_id, s.sell_account_id, s.buy_customer_id,
    s.sell_customer_id, s.buy_order_id, s.sell_order_id, s.aggressor, s.executed_at, s.qty * s.btc_rate, %s
FROM trade_batch s
"""
# Keys in ID order, so two batches sharing IDs lock them in the same order and never deadlock.
_TRADE_KEYS = f"""
INSERT INTO trading_risk_tradekey (trade_id, executed_at, digest)
SELECT s.trade_id, s.executed_at, {_TRADE_DIGEST} FROM trade_batch s ORDER BY s.trade_id
"""
_TRADE_INSERT_SOME = f"""
WITH new_keys AS (
    INSERT INTO trading_risk_tradekey (trade_id, executed_at, digest)
    SELECT s.trade_id, s.executed_at, {_TRADE_DIGEST} FROM trade_batch s ORDER BY s.trade_id
    ON CONFLICT (trade_id) DO NOTHING
    RETURNING trade_id
)
{_TRADE_TARGET} JOIN new_keys USING (trade_id)
"""
_TRADE_CONFLICTS = f"""
SELECT s.trade_id FROM trade_batch s JOIN trading_risk_tradekey k USING (trade_id) WHERE k.digest <> {_TRADE_DIGEST}
"""


def ingest_trades(*, trades: Sequence[TradeIn], now: datetime, columns: Columns | None = None) -> tuple[int, int]:
    """Store a batch of trades; returns (accepted, duplicates). All or nothing: 400 for unknown accounts or
    symbols, 409 when a trade ID comes back with another payload. `columns` are the batch's, if the
    decoder already gathered them."""
    columns = columns or Columns(trades)
    external, symbols = set(columns["buy_account_id"]) | set(columns["sell_account_id"]), set(columns["symbol"])
    accounts = accounts_cache.resolve(external)
    bases = instruments_cache.resolve(symbols)
    _refuse_unknown(
        _unknown(columns, ("symbol",), symbols, bases, "unknown instrument")
        + _unknown(columns, ("buy_account_id", "sell_account_id"), external, accounts, "unknown account")
    )
    account_text = {e: f"{accounts[e][0]}\t{accounts[e][1]}" for e in external}
    text = _CopyLines(
        (
            columns["trade_id"],
            columns["symbol"],
            columns["price"],
            columns["qty"],
            map(account_text.__getitem__, columns["buy_account_id"]),
            map(account_text.__getitem__, columns["sell_account_id"]),
            columns["buy_order_id"],
            columns["sell_order_id"],
            columns["aggressor"],
            _rfc3339(columns["executed_at"]),
            _btc_rates(columns, bases),
        )
    )
    with transaction.atomic(), connection.cursor() as cursor:
        _stage(cursor, _TRADE_STAGE, "trade_batch", _TRADE_COLUMNS, text)
        all_new = _all_keys_new(cursor, _TRADE_KEYS)
        cursor.execute(_TRADE_TARGET if all_new else _TRADE_INSERT_SOME, [now])
        accepted = cursor.rowcount
        if not all_new and accepted < len(trades):
            _refuse_conflicts(cursor, _TRADE_CONFLICTS, "trade_id", columns["trade_id"])
    return accepted, len(trades) - accepted


def _btc_rates(columns: Columns, bases: dict[str, str]) -> Iterable[str]:
    """Each trade's BTC per unit of its base asset, from the latest reference prices at or before its time
    ('\\N' when unpriced: the value is stored as NULL and counted by no volume rule). The database
    multiplies by qty, so Python never does decimal arithmetic per trade."""
    from trading_risk.selectors import PriceSeries

    symbols, times = columns["symbol"], columns["executed_at"]
    assets = {bases[s] for s in set(symbols)} | {"BTC"}
    start, end = min(times), max(times)
    series = PriceSeries.load(assets, start=start, end=end)
    if series.constant_between(start, end):  # the usual case: no new price inside a batch's few seconds
        rates = {symbol: series.btc_rate_text(bases[symbol], end) for symbol in set(symbols)}
        return map(rates.__getitem__, symbols)
    return [series.btc_rate_text(bases[s], at) for s, at in zip(symbols, times, strict=True)]


# ---- order events --------------------------------------------------------------------------------------
_EVENT_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS order_event_batch (
    event_id varchar(64) COLLATE "C", order_id varchar(64), account_id bigint, symbol varchar(32),
    type varchar(9), side varchar(4), price numeric(38, 18), qty numeric(38, 18), at timestamptz
) ON COMMIT DELETE ROWS
"""
_EVENT_COLUMNS = "event_id, order_id, account_id, symbol, type, side, price, qty, at"
_EVENT_DIGEST = "hash_record_extended(ROW(s.order_id, s.account_id, s.symbol, s.type, s.side, s.price, s.qty, s.at), 0)"
# The inserted events come back counted per (account, symbol, minute since the epoch): what the order/cancel
# counter needs. Binned with date_bin and converted once per bucket: extract() per row is numeric arithmetic.
# Rows go in (account, symbol, time) order: the B-tree the ladder reads takes them leaf after leaf, and a
# pair's events of one batch share heap pages.
_EVENT_TARGET = """
inserted AS (
    INSERT INTO trading_risk_orderevent (event_id, order_id, account_id, symbol, type, side, price, qty, at,
        received_at)
    SELECT s.event_id, s.order_id, s.account_id, s.symbol, s.type, s.side, s.price, s.qty, s.at, %s
    FROM order_event_batch s {join} ORDER BY s.account_id, s.symbol, s.at
    RETURNING account_id, symbol, at
)
SELECT account_id, symbol, (extract(epoch FROM minute) / 60)::bigint, n, newest FROM (
    SELECT account_id, symbol, date_bin('1 minute', at, timestamptz '2000-01-01 00:00:00+00') AS minute,
        count(*) AS n, max(at) AS newest
    FROM inserted GROUP BY 1, 2, 3
) buckets
"""
_EVENT_KEYS = f"""
INSERT INTO trading_risk_ordereventkey (event_id, at, digest)
SELECT s.event_id, s.at, {_EVENT_DIGEST} FROM order_event_batch s ORDER BY s.event_id
"""
_EVENT_INSERT_ALL = f"WITH {_EVENT_TARGET.format(join='')}"
_EVENT_INSERT_SOME = f"""
WITH new_keys AS (
    INSERT INTO trading_risk_ordereventkey (event_id, at, digest)
    SELECT s.event_id, s.at, {_EVENT_DIGEST} FROM order_event_batch s ORDER BY s.event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), {_EVENT_TARGET.format(join="JOIN new_keys USING (event_id)")}
"""
_EVENT_CONFLICTS = f"""
SELECT s.event_id FROM order_event_batch s JOIN trading_risk_ordereventkey k USING (event_id)
WHERE k.digest <> {_EVENT_DIGEST}
"""


def ingest_order_events(
    *, events: Sequence[OrderEventIn], now: datetime, columns: Columns | None = None
) -> tuple[int, int]:
    """Store a batch of order events and climb the order/cancel ladder where they cross its line;
    returns (accepted, duplicates). All or nothing, like trades."""
    columns = columns or Columns(events)
    external, symbols = set(columns["account_id"]), set(columns["symbol"])
    accounts = accounts_cache.resolve(external)
    bases = instruments_cache.resolve(symbols)
    _refuse_unknown(
        _unknown(columns, ("symbol",), symbols, bases, "unknown instrument")
        + _unknown(columns, ("account_id",), external, accounts, "unknown account")
    )
    account_text = {e: str(accounts[e][0]) for e in external}
    text = _CopyLines(
        (
            columns["event_id"],
            columns["order_id"],
            map(account_text.__getitem__, columns["account_id"]),
            columns["symbol"],
            columns["type"],
            columns["side"],
            columns["price"],
            columns["qty"],
            _rfc3339(columns["at"]),
        )
    )
    with transaction.atomic(), connection.cursor() as cursor:
        _stage(cursor, _EVENT_STAGE, "order_event_batch", _EVENT_COLUMNS, text)
        all_new = _all_keys_new(cursor, _EVENT_KEYS)
        cursor.execute(_EVENT_INSERT_ALL if all_new else _EVENT_INSERT_SOME, [now])
        buckets = cursor.fetchall()
        accepted = sum(row[3] for row in buckets)
        if not all_new and accepted < len(events):
            _refuse_conflicts(cursor, _EVENT_CONFLICTS, "event_id", columns["event_id"])
    # After the commit, so whichever batch counts last sees every other batch's events (see ladder.py).
    ladder.count_events(buckets=buckets, now=now)
    return accepted, len(events) - accepted
