"""Pure decisions for trade surveillance and pre-trade checks: no ORM, no clock, no Redis.

A rule's function name is the rule code stored on the alerts and restrictions it causes. Each returns a
Finding (or a ladder step) when it fires and None otherwise; the services gather the numbers and act.
Thresholds are inclusive: a volume exactly at the threshold fires.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

NO_ACTION = "NO_ACTION"
WARN = "WARN"
RESTRICT_OPEN = "RESTRICT_OPEN"
RESTRICT_OPEN_CLOSE = "RESTRICT_OPEN_CLOSE"
BAN_TRADING = "BAN_TRADING"
ACTIONS = (NO_ACTION, WARN, RESTRICT_OPEN, RESTRICT_OPEN_CLOSE, BAN_TRADING)
# The restriction code of the contract each restricting action imposes.
RESTRICTION_CODES = {
    RESTRICT_OPEN: "restricted_open",
    RESTRICT_OPEN_CLOSE: "restricted_open_close",
    BAN_TRADING: "trading_banned",
}

GENERAL, MAJOR, CRITICAL = "GENERAL", "MAJOR", "CRITICAL"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    action: str
    summary: str
    level: str = ""  # distinguishes two findings of one rule on one day (excessive trading: warn / ban)


def _severity(action: str) -> str:
    return MAJOR if action in RESTRICTION_CODES else GENERAL


# ---- periodic rules -------------------------------------------------------------------------------------
def wash_trading(*, volume_btc: Decimal, threshold_btc: Decimal, action: str) -> Finding | None:
    """Volume between different accounts of one beneficial owner (or a linked group) at or over the threshold."""
    if volume_btc < threshold_btc:
        return None
    summary = f"Wash trading: {volume_btc:.8f} BTC between linked accounts (threshold {threshold_btc} BTC)"
    return Finding("wash_trading", _severity(action), action, summary)


def self_trade(*, volume_btc: Decimal, threshold_btc: Decimal, action: str) -> Finding | None:
    """Volume with the same account on both sides at or over the threshold."""
    if volume_btc < threshold_btc:
        return None
    summary = f"Self-trade: {volume_btc:.8f} BTC with the account on both sides (threshold {threshold_btc} BTC)"
    return Finding("self_trade", _severity(action), action, summary)


@dataclass(frozen=True)
class ExcessiveLimits:
    warn_btc: Decimal
    warn_action: str
    ban_btc: Decimal
    ban_action: str


def excessive_trading(*, volume_btc: Decimal, limits: ExcessiveLimits) -> Finding | None:
    """Rolling 24 h volume of one account: the ban line wins over the warning line."""
    if volume_btc >= limits.ban_btc:
        summary = f"Excessive trading: {volume_btc:.8f} BTC in 24 h (ban line {limits.ban_btc} BTC)"
        return Finding("excessive_trading", MAJOR, limits.ban_action, summary, level="ban")
    if volume_btc >= limits.warn_btc:
        summary = f"Excessive trading: {volume_btc:.8f} BTC in 24 h (warning line {limits.warn_btc} BTC)"
        return Finding("excessive_trading", GENERAL, limits.warn_action, summary, level="warn")
    return None


@dataclass(frozen=True)
class Baseline:
    """An account's own history of one measure: active days, mean and population standard deviation."""

    days: int
    mean: float
    stdev: float


@dataclass(frozen=True)
class AnomalyLimits:
    min_deviations: float
    min_history_days: int
    min_volume_btc: float
    action: str


def deviations(value: float, baseline: Baseline) -> float:
    """How many standard deviations `value` lies above the baseline mean.

    A perfectly steady history has no spread; a tenth of the mean stands in for it, so a jump from a
    steady 10 to 10.5 is not "infinitely" unusual while a jump to 100 is.
    """
    spread = max(baseline.stdev, abs(baseline.mean) * 0.1, 1e-9)
    return (value - baseline.mean) / spread


def behaviour_anomaly(
    *, volume_btc: float, order_events: int, volume: Baseline, orders: Baseline, limits: AnomalyLimits
) -> Finding | None:
    """An account whose day departs sharply from its own history (volume or order rate).

    Floats are fine here: the result is only compared with a threshold in standard deviations.
    """
    if volume.days < limits.min_history_days:
        return None
    z_volume = deviations(volume_btc, volume) if volume_btc >= limits.min_volume_btc else 0.0
    z_orders = deviations(order_events, orders)
    z = max(z_volume, z_orders)
    if not math.isfinite(z) or z < limits.min_deviations:
        return None
    measure = "volume" if z_volume >= z_orders else "order rate"
    summary = (
        f"Behaviour anomaly: {measure} {z:.1f} σ above the account's {volume.days}-day baseline "
        f"(volume {volume_btc:.4f} BTC vs mean {volume.mean:.4f}; orders {order_events} vs mean "
        f"{orders.mean:.1f})"
    )
    return Finding("behaviour_anomaly", _severity(limits.action), limits.action, summary)


# ---- the frequent order/cancel ladder ----------------------------------------------------------------------
@dataclass(frozen=True)
class LadderState:
    step: int  # 0: never warned
    last_hit_at: datetime | None


@dataclass(frozen=True)
class LadderLimits:
    events: int
    ladder_window: timedelta
    restriction: timedelta


@dataclass(frozen=True)
class LadderStep:
    step: int
    restriction_code: str | None
    channels: tuple[str, ...]


# step → (restriction, channels) [002 §4.2.5]
_LADDER = {
    1: (None, ("SMS", "EMAIL")),
    2: ("restricted_open", ("SMS", "EMAIL", "CALL")),
    3: ("restricted_open_close", ("SMS", "EMAIL", "CALL")),
}


def frequent_order_cancel(*, state: LadderState, events: int, at: datetime, limits: LadderLimits) -> LadderStep | None:
    """The ladder step a count of order+cancel events reaches at `at`, or None below the line.

    `events` counts only events after the previous hit (so one crossing is one hit). A hit within the
    ladder window of the previous warning climbs one step (up to the third); a later one starts again.
    """
    if events < limits.events:
        return None
    recent = state.last_hit_at is not None and at - state.last_hit_at <= limits.ladder_window
    step = min(state.step + 1, 3) if recent else 1
    code, channels = _LADDER[step]
    return LadderStep(step, code, channels)


def ladder_window_start(*, state: LadderState, at: datetime, window: timedelta) -> datetime:
    """Events after this moment count towards the next hit: the rolling window, cut at the previous hit."""
    start = at - window
    return max(start, state.last_hit_at) if state.last_hit_at else start


# ---- pre-trade checks ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Standing:
    code: str
    symbol: str = ""


@dataclass(frozen=True)
class Band:
    """The new-listing price band in force: index * (1 ± percent/100); index None when no price is known."""

    index_price: Decimal | None
    percent: Decimal


@dataclass(frozen=True)
class PreTradeFacts:
    symbol: str
    price: Decimal
    reduce_only: bool
    restrictions: tuple[Standing, ...]
    halt_modes: tuple[str, ...]  # HALT / CLOSE_ONLY in force for this symbol or for all symbols
    band: Band | None  # None outside the new-listing window
    position: "PositionCheck | None" = None  # None for spot pairs and reduce-only orders


BLOCKS_ALL = ("account_locked", "sanctions_hit", "trading_banned", "restricted_open_close", "symbol_halted")


def pre_trade_check(facts: PreTradeFacts) -> list[str]:
    """The reason codes that refuse this order (empty: allowed). An order not marked reduce-only opens."""
    reasons = []
    for r in facts.restrictions:
        if r.symbol and r.symbol != facts.symbol:
            continue
        if r.code in BLOCKS_ALL or (r.code == "restricted_open" and not facts.reduce_only):
            reasons.append(r.code)
    if "HALT" in facts.halt_modes or ("CLOSE_ONLY" in facts.halt_modes and not facts.reduce_only):
        reasons.append("symbol_halted")
    if facts.band is not None and not within_band(facts.price, facts.band):
        reasons.append("price_band")
    if facts.position is not None and not facts.reduce_only and position_limit(facts.position):
        reasons.append("position_limit")
    return sorted(set(reasons))


def within_band(price: Decimal, band: Band) -> bool:
    """Inside index * (1 ± percent), edges included; without an index price nothing is inside."""
    if band.index_price is None:
        return False
    width = band.index_price * band.percent / 100
    return band.index_price - width <= price <= band.index_price + width


# ---- position limits -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LimitRow:
    """A specific limit in force for the product: all contracts (monthly False) or the order's contract month."""

    monthly: bool
    customer_type: str  # "" for every type
    limit_btc: Decimal
    delivery_month_limit_btc: Decimal | None = None


@dataclass(frozen=True)
class LimitTerms:
    rows: tuple[LimitRow, ...]
    customer_type: str
    default_btc: Decimal  # the risk parameter position.limit_btc for the product
    delivery_factor: Decimal  # position.delivery_month_limit_factor
    member_limit_btc: Decimal | None  # the customer's broker-member limit, if it is a member
    dated: bool  # the order's instrument is a dated future
    delivery_month: bool  # ... and expires in the current month


def applicable_limits(terms: LimitTerms) -> tuple[Decimal, Decimal | None]:
    """(limit on the product's contracts combined, limit on the order's contract month or None), in BTC.

    A row for the customer's own type wins over a row for every type; without a product row the parameter
    applies. A broker member's own limit caps its product limit (member and client limits combined: the
    tighter one applies). In the delivery month the month limit is the row's delivery limit, else the month
    (or product) limit times the delivery factor.
    """
    product_row = _preferred(terms.rows, monthly=False, customer_type=terms.customer_type)
    product = product_row.limit_btc if product_row else terms.default_btc
    if terms.member_limit_btc is not None:
        product = min(product, terms.member_limit_btc)
    if not terms.dated:
        return product, None
    month_row = _preferred(terms.rows, monthly=True, customer_type=terms.customer_type)
    month = month_row.limit_btc if month_row else None
    if terms.delivery_month:
        explicit = next(
            (r.delivery_month_limit_btc for r in (month_row, product_row) if r and r.delivery_month_limit_btc),
            None,
        )
        delivery = explicit if explicit is not None else (month or product) * terms.delivery_factor
        month = delivery if month is None else min(month, delivery)
    return product, month


def _preferred(rows: tuple[LimitRow, ...], *, monthly: bool, customer_type: str) -> LimitRow | None:
    candidates = [r for r in rows if r.monthly == monthly and r.customer_type in ("", customer_type)]
    return max(candidates, key=lambda r: r.customer_type == customer_type, default=None)


@dataclass(frozen=True)
class PositionCheck:
    """A customer's net positions (base units, long positive) in the order's product and contract month."""

    order_qty: Decimal  # signed: buy positive, sell negative
    product_qty: Decimal  # every non-exempt account of the customer, every contract of the product
    month_qty: Decimal | None  # the same in the order's contract month; None unless a dated future
    btc_rate: Decimal  # BTC per unit of the product
    product_limit_btc: Decimal
    month_limit_btc: Decimal | None
    exempt: bool  # the ordering account holds a hedging exemption in force


def position_limit(check: PositionCheck) -> bool:
    """True when the order takes a net position past its limit and further from zero.

    An order that reduces the position always passes, even above the limit; exactly at the limit passes.
    """
    if check.exempt:
        return False
    pairs = [(check.product_qty, check.product_limit_btc)]
    if check.month_qty is not None and check.month_limit_btc is not None:
        pairs.append((check.month_qty, check.month_limit_btc))
    return any(_breaks(held, check.order_qty, limit, check.btc_rate) for held, limit in pairs)


def _breaks(held: Decimal, order: Decimal, limit_btc: Decimal, rate: Decimal) -> bool:
    after = held + order
    return abs(after) > abs(held) and abs(after) * rate > limit_btc
