"""Pre-trade checks: answered from precomputed state only (restrictions in force, halts, the instrument and
its latest index price), in one query, never waiting on Celery.

Instruments are cached in the process for a few seconds; restrictions and halts are read every time,
so an approved halt or a new restriction is in the answer as soon as it commits.
"""

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection

from backoffice import parameters
from backoffice.errors import InvalidInput
from trading_risk import rules
from trading_risk.ingest import accounts_cache
from trading_risk.models import Instrument

_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Order:
    account_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    reduce_only: bool


class _Listings:
    """symbol → (instrument id, listed_at)."""

    def __init__(self):
        self.rows: dict[str, tuple[int, datetime]] = {}
        self.loaded_at = float("-inf")

    def get(self, symbol: str) -> tuple[int, datetime] | None:
        if time.monotonic() - self.loaded_at > _CACHE_SECONDS or symbol not in self.rows:
            self.rows = {s: (i, at) for s, i, at in Instrument.objects.values_list("symbol", "pk", "listed_at")}
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
    params = {
        "customer": account[1],
        "account": account[0],
        "now": now,
        "symbol": order.symbol,
        "instrument": listing[0],
    }
    with connection.cursor() as cursor:
        cursor.execute(_STATE if percent is None else _STATE_AND_INDEX, params)
        rows = cursor.fetchall()
    index = next((Decimal(value) for kind, value, _ in rows if kind == "I"), None)
    facts = rules.PreTradeFacts(
        symbol=order.symbol,
        price=order.price,
        reduce_only=order.reduce_only,
        restrictions=tuple(rules.Standing(code, symbol) for kind, code, symbol in rows if kind == "R"),
        halt_modes=tuple(mode for kind, mode, _ in rows if kind == "H"),
        band=None if percent is None else rules.Band(index, percent),
    )
    reasons = rules.pre_trade_check(facts)
    return {"allowed": not reasons, "reasons": reasons}


def _band_percent(symbol: str, listing: tuple[int, datetime], now: datetime) -> Decimal | None:
    """The band's width in percent while the new-listing band applies, else None."""
    _, listed_at = listing
    minutes = parameters.param("price_band.new_listing_minutes", scope=symbol, at=now)
    if not listed_at <= now < listed_at + timedelta(minutes=minutes):
        return None
    return parameters.param("price_band.new_listing_percent", scope=symbol, at=now)
