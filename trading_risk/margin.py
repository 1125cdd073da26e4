"""Margin arithmetic: risk-limit tiers, maintenance margin, liquidation and bankruptcy prices, the
insurance fund's share of a liquidation and the auto-deleveraging ranking. Pure Decimal functions,
no ORM, no clock; the formulas and their worked numbers are in shared/risk-mechanics.md §1–2.

Notation: `side` is +1 for long and −1 for short; `qty` is |position| in base units (linear) and
`contracts × contract_size` is the position in quote currency (inverse); prices are per base unit.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

ZERO, ONE = Decimal(0), Decimal(1)


# ---- tiers -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepTier:
    steps: int
    maintenance_rate: Decimal
    initial_rate: Decimal


def step_tier(
    size: Decimal,
    *,
    base_limit: Decimal,
    step: Decimal,
    base_maintenance: Decimal,
    base_initial: Decimal,
    increment: Decimal,
) -> StepTier:
    """BitMEX-style risk limits: both rates rise by `increment` per step at and above the base limit."""
    steps = 0 if size < base_limit else int(((size - base_limit) / step).to_integral_value(ROUND_FLOOR)) + 1
    return StepTier(steps, base_maintenance + steps * increment, base_initial + steps * increment)


@dataclass(frozen=True)
class Bracket:
    floor: Decimal
    cap: Decimal
    maintenance_rate: Decimal
    maintenance_amount: Decimal = ZERO  # "cum": keeps the maintenance margin continuous across brackets


def with_maintenance_amounts(brackets: Sequence[Bracket]) -> list[Bracket]:
    """Brackets in ascending order with cum_k = cum_(k-1) + floor_k × (rate_k − rate_(k-1)), cum_1 = 0."""
    result, cum, previous_rate = [], ZERO, None
    for b in brackets:
        if previous_rate is not None:
            cum += b.floor * (b.maintenance_rate - previous_rate)
        result.append(Bracket(b.floor, b.cap, b.maintenance_rate, cum))
        previous_rate = b.maintenance_rate
    return result


def bracket_for(notional: Decimal, brackets: Sequence[Bracket]) -> Bracket:
    """The bracket holding `notional` (floor ≤ notional < cap); the last one for anything larger."""
    for b in brackets:
        if b.floor <= notional < b.cap:
            return b
    return brackets[-1]


def maintenance_margin(notional: Decimal, brackets: Sequence[Bracket]) -> Decimal:
    b = bracket_for(notional, brackets)
    return notional * b.maintenance_rate - b.maintenance_amount


def warning_rate(maintenance_rate: Decimal, initial_rate: Decimal) -> Decimal:
    """The warning line: halfway between maintenance and initial margin."""
    return (maintenance_rate + initial_rate) / 2


# ---- liquidation and bankruptcy prices ---------------------------------------------------------------
def liquidation_price_linear(
    *,
    side: int,
    qty: Decimal,
    entry: Decimal,
    wallet: Decimal,
    brackets: Sequence[Bracket],
    other_mm: Decimal = ZERO,
    other_upnl: Decimal = ZERO,
) -> Decimal | None:
    """Exact linear liquidation price, maintenance margin taken at the liquidation price itself.

    Solves wallet + side·qty·(P − entry) + other_upnl − other_mm = qty·P·rate − cum in the bracket that
    holds qty·P; None when no bracket is consistent (e.g. the price would be ≤ 0).
    """
    for b in brackets:
        denominator = qty * b.maintenance_rate - side * qty
        if denominator == 0:
            continue
        price = (wallet - other_mm + other_upnl + b.maintenance_amount - side * qty * entry) / denominator
        if price > 0 and b.floor <= qty * price < b.cap:
            return price
    return None


def liquidation_price_linear_simple(
    *, side: int, entry: Decimal, initial_rate: Decimal, maintenance_rate: Decimal
) -> Decimal:
    """Simplified linear liquidation price (maintenance margin on entry value, isolated, no fees)."""
    return entry * (1 - side * (initial_rate - maintenance_rate))


def liquidation_price_inverse(
    *,
    side: int,
    contracts: Decimal,
    contract_size: Decimal,
    entry: Decimal,
    wallet: Decimal,
    maintenance_rate: Decimal,
    maintenance_amount: Decimal = ZERO,
) -> Decimal:
    """Exact inverse (coin-margined) liquidation price: N·CS·(rate + side) / (wallet + cum + side·N·CS/entry)."""
    size = contracts * contract_size
    return size * (maintenance_rate + side) / (wallet + maintenance_amount + side * size / entry)


def liquidation_price_inverse_simple(
    *, side: int, entry: Decimal, initial_rate: Decimal, maintenance_rate: Decimal
) -> Decimal:
    """Simplified inverse liquidation price (maintenance margin on entry value)."""
    return entry / (1 + side * (initial_rate - maintenance_rate))


def bankruptcy_price_linear(*, side: int, entry: Decimal, leverage: Decimal) -> Decimal:
    return entry * (1 - side / leverage)


def bankruptcy_price_inverse(*, side: int, entry: Decimal, leverage: Decimal) -> Decimal:
    return entry * leverage / (leverage + side)


# ---- insurance fund ----------------------------------------------------------------------------------
def insurance_fund_change_linear(*, side: int, qty: Decimal, fill: Decimal, bankruptcy: Decimal) -> Decimal:
    """What a liquidation pays into (+) or draws from (−) the insurance fund, in quote currency."""
    return side * qty * (fill - bankruptcy)


def insurance_fund_change_inverse(
    *, side: int, contracts: Decimal, contract_size: Decimal, fill: Decimal, bankruptcy: Decimal
) -> Decimal:
    """The same for an inverse contract, in the coin."""
    return side * contracts * contract_size * (1 / bankruptcy - 1 / fill)


# ---- auto-deleveraging -------------------------------------------------------------------------------
def adl_score(*, side: int, qty: Decimal, entry: Decimal, mark: Decimal, bankruptcy: Decimal) -> Decimal:
    """PnL% × effective leverage for a winning position, PnL% ÷ effective leverage for a losing one."""
    mark_value, bankrupt_value, entry_value = side * qty * mark, side * qty * bankruptcy, side * qty * entry
    leverage = abs(mark_value) / (mark_value - bankrupt_value)
    pnl = (mark_value - entry_value) / abs(entry_value)
    return pnl * leverage if pnl > 0 else pnl / leverage


@dataclass(frozen=True)
class QueuePosition:
    key: str
    qty: Decimal
    score: Decimal


def adl_queue(positions: Sequence[QueuePosition]) -> list[tuple[QueuePosition, int]]:
    """Positions of one symbol and side, highest score first, each with its quintile indicator (1–5)."""
    ranked = sorted(positions, key=lambda p: p.score, reverse=True)
    total = sum((p.qty for p in ranked), ZERO)
    queue, cumulative = [], ZERO
    for p in ranked:
        cumulative += p.qty
        queue.append((p, int((5 * cumulative / total).to_integral_value(rounding="ROUND_CEILING"))))
    return queue
