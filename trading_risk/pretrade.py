"""Pre-trade checks: answered from precomputed state only (restrictions in force, halts, the instrument and
its latest index price, the customer's positions, limits and exemptions), in one query, never waiting on Celery.

Instruments are cached in the process for a few seconds; everything else is read every time, so an approved
halt, a new restriction, limit or exemption, or a new position snapshot is in the answer as soon as it commits.

Position limits apply to perpetual and dated contracts (a spot purchase opens no position) and are valued at
the latest reference prices at or before the check, like the positions already held, so order and holdings
are measured alike; the order's own price plays no part. Without a reference price the check is a 400.
"""

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db import connection

from backoffice import parameters
from backoffice.errors import InvalidInput
from trading_risk import rules
from trading_risk.ingest import accounts_cache
from trading_risk.models import Instrument
from trading_risk.selectors import BTC, Unpriced

_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Order:
    account_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    reduce_only: bool


class Listing(NamedTuple):
    pk: int
    listed_at: datetime
    kind: str
    base: str
    expires_at: datetime | None


class _Listings:
    """symbol → Listing."""

    def __init__(self):
        self.rows: dict[str, Listing] = {}
        self.loaded_at = float("-inf")

    def get(self, symbol: str) -> Listing | None:
        if time.monotonic() - self.loaded_at > _CACHE_SECONDS or symbol not in self.rows:
            fields = ("symbol", "pk", "listed_at", "kind", "base", "expires_at")
            self.rows = {row[0]: Listing(*row[1:]) for row in Instrument.objects.values_list(*fields)}
            self.loaded_at = time.monotonic()
        return self.rows.get(symbol)


listings = _Listings()

# Restrictions in force for the account (or all of the customer's accounts), then halts of this symbol or all.
_STATE = """
SELECT 'R', code, symbol FROM accounts_restriction
WHERE customer_id = %(customer)s AND (account_id IS NULL OR account_id = %(account)s) AND lifted_at IS NULL
  AND starts_at <= %(now)s AND (until IS NULL OR until > %(now)s)
UNION ALL
SELECT 'H', mode, symbol FROM trading_risk_tradinghalt WHERE ended_at IS NULL AND symbol IN ('', %(symbol)s)
"""
# During the new-listing band, the latest index price comes back in the same round trip.
_STATE_AND_INDEX = (
    _STATE
    + """UNION ALL
(SELECT 'I', index_price::text, '' FROM trading_risk_instrumentprice
 WHERE instrument_id = %(instrument)s AND at <= %(now)s ORDER BY at DESC LIMIT 1)
"""
)

# For an opening order in a contract: whether the account holds an exemption in force, the customer's net
# positions in the product and contract month (exempt accounts left out), the limits in force, its type and
# broker-member limit, and (unless the product is BTC) the product's and BTC's latest reference prices.
# The function is defined in migration 0007_position_limits; PL/pgSQL keeps its plan per connection.
_LIMITS = """UNION ALL
SELECT r_kind, r_a, r_b FROM trading_risk_limit_state(
    %(customer)s, %(account)s, %(product)s, %(month_start)s::date, %(month_end)s::date, %(now)s, %(priced)s)
"""


def check_order(order: Order, *, now: datetime) -> dict:
    """The contract's answer {"allowed", "reasons"} for one order at `now`, from one query."""
    account = accounts_cache.resolve({order.account_id}).get(order.account_id)
    listing = listings.get(order.symbol)
    errors = ([{"field": "account_id", "message": "unknown account"}] if account is None else []) + (
        [{"field": "symbol", "message": "unknown instrument"}] if listing is None else []
    )
    if errors:
        raise InvalidInput("The order names an unknown account or instrument.", details=errors)
    percent = _band_percent(order.symbol, listing, now)
    limited = listing.kind != Instrument.Kind.SPOT and not order.reduce_only
    month_start, month_end = _contract_month(listing)
    params = {
        "customer": account[1],
        "account": account[0],
        "now": now,
        "symbol": order.symbol,
        "instrument": listing.pk,
        "product": listing.base,
        "month_start": month_start,
        "month_end": month_end,
        "priced": listing.base != BTC,
    }
    sql = _STATE if percent is None else _STATE_AND_INDEX
    if limited:
        sql += _LIMITS
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    index = next((Decimal(value) for kind, value, _ in rows if kind == "I"), None)
    facts = rules.PreTradeFacts(
        symbol=order.symbol,
        price=order.price,
        reduce_only=order.reduce_only,
        restrictions=tuple(rules.Standing(code, symbol) for kind, code, symbol in rows if kind == "R"),
        halt_modes=tuple(mode for kind, mode, _ in rows if kind == "H"),
        band=None if percent is None else rules.Band(index, percent),
        position=_position_check(order, listing, rows, now) if limited else None,
    )
    reasons = rules.pre_trade_check(facts)
    return {"allowed": not reasons, "reasons": reasons}


def _band_percent(symbol: str, listing: Listing, now: datetime) -> Decimal | None:
    """The band's width in percent while the new-listing band applies, else None."""
    listed_at = listing.listed_at
    minutes = parameters.param("price_band.new_listing_minutes", scope=symbol, at=now)
    if not listed_at <= now < listed_at + timedelta(minutes=minutes):
        return None
    return parameters.param("price_band.new_listing_percent", scope=symbol, at=now)


def _contract_month(listing: Listing) -> tuple[date | None, date | None]:
    """[first day of the expiry month, first day of the next) of a dated future; (None, None) otherwise."""
    if listing.kind != Instrument.Kind.FUTURE:
        return None, None
    start = listing.expires_at.astimezone(UTC).date().replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _position_check(order: Order, listing: Listing, rows: list, now: datetime) -> rules.PositionCheck:
    """The position-limit facts from the query's rows; Unpriced when the order needs a price that is missing."""
    exempt = any(kind == "X" for kind, _, _ in rows)
    product_qty, month_qty = next((Decimal(a), Decimal(b)) for kind, a, b in rows if kind == "P")
    dated = listing.kind == Instrument.Kind.FUTURE
    signed = order.qty if order.side == "buy" else -order.qty
    # Only an order that moves a position away from zero needs valuing: closing never waits for a price.
    grows = abs(product_qty + signed) > abs(product_qty) or (dated and abs(month_qty + signed) > abs(month_qty))
    prices = {which: Decimal(usd) for kind, usd, which in rows if kind == "U"}
    rate = Decimal(1) if listing.base == BTC else _rate(listing.base, prices, now, needed=grows and not exempt)
    product_limit, month_limit = rules.applicable_limits(_terms(listing, rows, now))
    return rules.PositionCheck(
        order_qty=signed,
        product_qty=product_qty,
        month_qty=month_qty if dated else None,
        btc_rate=rate,
        product_limit_btc=product_limit,
        month_limit_btc=month_limit,
        exempt=exempt,
    )


def _terms(listing: Listing, rows: list, now: datetime) -> rules.LimitTerms:
    customer_type, member_limit = next((a, b) for kind, a, b in rows if kind == "C")
    dated = listing.kind == Instrument.Kind.FUTURE
    return rules.LimitTerms(
        rows=tuple(_limit_row(a, b) for kind, a, b in rows if kind == "L"),
        customer_type=customer_type,
        default_btc=parameters.param("position.limit_btc", scope=listing.base, at=now),
        delivery_factor=parameters.param("position.delivery_month_limit_factor", scope=listing.base, at=now),
        member_limit_btc=Decimal(member_limit) if member_limit else None,
        dated=dated,
        delivery_month=dated and _contract_month(listing)[0] == now.astimezone(UTC).date().replace(day=1),
    )


def _rate(product: str, prices: dict[str, Decimal], now: datetime, *, needed: bool) -> Decimal:
    if "P" in prices and "B" in prices:
        return prices["P"] / prices["B"]
    if not needed:
        return Decimal(0)
    missing = product if "P" not in prices else BTC
    raise Unpriced(f"No reference price for {missing} at or before {now.isoformat()}; send /prices/ first.")


def _limit_row(amounts: str, scope: str) -> rules.LimitRow:
    limit, delivery = amounts.split("|")
    monthly, customer_type = scope.split("|")
    return rules.LimitRow(
        monthly=monthly == "true",
        customer_type=customer_type,
        limit_btc=Decimal(limit),
        delivery_month_limit_btc=Decimal(delivery) if delivery else None,
    )
