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


# ---- risk-limit tables as one shape ---------------------------------------------------------------------
LINEAR, INVERSE = "LINEAR", "INVERSE"
INFINITY = Decimal("Infinity")


@dataclass(frozen=True)
class Tier:
    """One band of a risk-limit table: sizes in [floor, cap) carry these rates and maintenance amount."""

    floor: Decimal
    cap: Decimal
    maintenance_rate: Decimal
    initial_rate: Decimal
    maintenance_amount: Decimal = ZERO


@dataclass(frozen=True)
class RiskLimits:
    """An instrument's risk limits: a step table (`step` set) or explicit tiers, for a linear or an inverse
    contract. Sizes are in the settlement currency: quote notional (linear) or coin value (inverse)."""

    settlement: str = LINEAR
    contract_size: Decimal = ONE
    base_limit: Decimal | None = None
    step: Decimal | None = None
    base_maintenance: Decimal | None = None
    base_initial: Decimal | None = None
    increment: Decimal | None = None
    tiers: tuple[Tier, ...] = ()

    @property
    def is_step(self) -> bool:
        return self.step is not None

    def tier(self, size: Decimal) -> Tier:
        """The tier holding a position of this size."""
        if not self.is_step:
            for t in self.tiers:
                if t.floor <= size < t.cap:
                    return t
            return self.tiers[-1]
        s = step_tier(
            size,
            base_limit=self.base_limit,
            step=self.step,
            base_maintenance=self.base_maintenance,
            base_initial=self.base_initial,
            increment=self.increment,
        )
        floor = ZERO if s.steps == 0 else self.base_limit + (s.steps - 1) * self.step
        cap = self.base_limit + s.steps * self.step
        return Tier(floor, cap, s.maintenance_rate, s.initial_rate)

    def tiers_up_to(self, size: Decimal, *, most: int = 10_000) -> list[Tier]:
        """Every tier a position could pass through up to `size` (the last one open-ended)."""
        if not self.is_step:
            return list(self.tiers[:-1]) + [_open_ended(self.tiers[-1])]
        last = min(self.tier(size), self.tier(self.base_limit + (most - 1) * self.step), key=lambda t: t.floor)
        result, floor = [], ZERO
        while floor <= last.floor:
            tier = self.tier(floor)
            result.append(tier)
            floor = tier.cap
        return result[:-1] + [_open_ended(result[-1])]


def _open_ended(tier: Tier) -> Tier:
    return Tier(tier.floor, INFINITY, tier.maintenance_rate, tier.initial_rate, tier.maintenance_amount)


def tiers_with_amounts(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """Bracket tiers with their maintenance amounts (cum), computed as in `with_maintenance_amounts`."""
    amounts = with_maintenance_amounts([Bracket(t.floor, t.cap, t.maintenance_rate) for t in tiers])
    return tuple(
        Tier(t.floor, t.cap, t.maintenance_rate, t.initial_rate, a.maintenance_amount)
        for t, a in zip(tiers, amounts, strict=True)
    )


def position_size(limits: RiskLimits, *, qty: Decimal, price: Decimal) -> Decimal:
    """Size in the settlement currency at `price`: qty × price (linear), contracts × contract size / price."""
    if limits.settlement == INVERSE:
        return qty * limits.contract_size / price
    return qty * price


def unrealised_pnl(limits: RiskLimits, *, side: int, qty: Decimal, entry: Decimal, mark: Decimal) -> Decimal:
    """In the settlement currency: side·qty·(mark − entry), or side·N·CS·(1/entry − 1/mark) for inverse."""
    if limits.settlement == INVERSE:
        return side * qty * limits.contract_size * (1 / entry - 1 / mark)
    return side * qty * (mark - entry)


# ---- a position's prices --------------------------------------------------------------------------------
def liquidation_price(
    limits: RiskLimits, *, side: int, qty: Decimal, entry: Decimal, wallet: Decimal
) -> Decimal | None:
    """Exact isolated liquidation price, maintenance margin taken at the liquidation price in its own tier."""
    top = wallet + qty * entry if limits.settlement == LINEAR else wallet + qty * limits.contract_size / entry
    tiers = limits.tiers_up_to(top + _largest_amount(limits))
    if limits.settlement == LINEAR:
        brackets = [Bracket(t.floor, t.cap, t.maintenance_rate, t.maintenance_amount) for t in tiers]
        return liquidation_price_linear(side=side, qty=qty, entry=entry, wallet=wallet, brackets=brackets)
    return _liquidation_price_inverse_tiered(limits, tiers, side=side, qty=qty, entry=entry, wallet=wallet)


def _largest_amount(limits: RiskLimits) -> Decimal:
    return max((t.maintenance_amount for t in limits.tiers), default=ZERO)


def _liquidation_price_inverse_tiered(limits, tiers, *, side, qty, entry, wallet) -> Decimal | None:
    size = qty * limits.contract_size
    for t in tiers:
        denominator = wallet + t.maintenance_amount + side * size / entry
        if denominator == 0:
            continue
        price = size * (t.maintenance_rate + side) / denominator
        if price > 0 and t.floor <= size / price < t.cap:
            return price
    return None


def bankruptcy_price(limits: RiskLimits, *, side: int, qty: Decimal, entry: Decimal, wallet: Decimal) -> Decimal | None:
    """Where the position's own margin is exhausted; leverage = notional at entry / margin. None when the
    margin covers the whole notional on the side where the price cannot get there (≤ 0 or infinite)."""
    notional = position_size(limits, qty=qty, price=entry)
    if wallet == 0:
        return entry
    leverage = notional / wallet
    if limits.settlement == INVERSE:
        return bankruptcy_price_inverse(side=side, entry=entry, leverage=leverage) if leverage + side > 0 else None
    price = bankruptcy_price_linear(side=side, entry=entry, leverage=leverage)
    return price if price > 0 else None


# ---- margin at the mark, and the classification ------------------------------------------------------------
HEALTHY, WARNING, BELOW_MAINTENANCE, LIQUIDATION = "HEALTHY", "WARNING", "BELOW_MAINTENANCE", "LIQUIDATION"


@dataclass(frozen=True)
class PositionAtMark:
    """One isolated position at the mark, in its settlement currency, with that currency's USD rate."""

    notional: Decimal
    margin: Decimal
    unrealised_pnl: Decimal
    maintenance_margin: Decimal
    initial_margin: Decimal
    usd_rate: Decimal

    @property
    def equity(self) -> Decimal:
        return self.margin + self.unrealised_pnl

    @property
    def liquidating(self) -> bool:
        """The mark has crossed the position's liquidation price: its isolated equity is at or below its MM.

        A position without margin of its own is on cross margin: it has no liquidation price of its own, and
        its losses and MM weigh on the account's equity and MM instead."""
        return self.margin > 0 and self.equity <= self.maintenance_margin


def position_at_mark(
    limits: RiskLimits, *, side: int, qty: Decimal, entry: Decimal, margin: Decimal, mark: Decimal, usd_rate: Decimal
) -> PositionAtMark:
    """MM = size × rate − amount and IM = size × initial rate, in the tier of the size at the mark."""
    size = position_size(limits, qty=qty, price=mark)
    tier = limits.tier(size)
    return PositionAtMark(
        notional=size,
        margin=margin,
        unrealised_pnl=unrealised_pnl(limits, side=side, qty=qty, entry=entry, mark=mark),
        maintenance_margin=size * tier.maintenance_rate - tier.maintenance_amount,
        initial_margin=size * tier.initial_rate,
        usd_rate=usd_rate,
    )


@dataclass(frozen=True)
class BookMargin:
    """One account's book at the mark, in USD, and its classification."""

    equity: Decimal
    maintenance_margin: Decimal
    initial_margin: Decimal
    warning_line: Decimal
    notional: Decimal
    classification: str


def book_margin(positions: Sequence[PositionAtMark], *, balances_usd: Decimal, warning_fraction: Decimal) -> BookMargin:
    """Equity = Σ (margin + uPnL) + available balances; MM, IM summed; warning line = MM + f·(IM − MM).

    LIQUIDATION if any position crossed its own liquidation price, else BELOW_MAINTENANCE if equity < MM,
    else WARNING if equity < the warning line, else HEALTHY.
    """
    equity = sum((p.equity * p.usd_rate for p in positions), ZERO) + balances_usd
    mm = sum((p.maintenance_margin * p.usd_rate for p in positions), ZERO)
    im = sum((p.initial_margin * p.usd_rate for p in positions), ZERO)
    line = mm + warning_fraction * (im - mm)
    notional = sum((p.notional * p.usd_rate for p in positions), ZERO)
    return BookMargin(equity, mm, im, line, notional, classify(positions, equity=equity, maintenance=mm, line=line))


def classify(positions: Sequence[PositionAtMark], *, equity: Decimal, maintenance: Decimal, line: Decimal) -> str:
    return classify_figures(
        liquidating=any(p.liquidating for p in positions), equity=equity, maintenance=maintenance, line=line
    )


def classify_figures(*, liquidating: bool, equity: Decimal, maintenance: Decimal, line: Decimal) -> str:
    """The class of a book from its figures and whether any of its positions crossed its liquidation price."""
    if liquidating:
        return LIQUIDATION
    if equity < maintenance:
        return BELOW_MAINTENANCE
    if equity < line:
        return WARNING
    return HEALTHY


def adl_allocation(queue: Sequence[QueuePosition], qty: Decimal) -> tuple[list[tuple[QueuePosition, Decimal]], Decimal]:
    """Walk a ranked queue from the top, closing each position until `qty` is used up (BitMEX §2.3).

    Returns the (position, quantity closed) pairs in queue order and the quantity left when the queue ran out.
    """
    allocations, remaining = [], qty
    for p in queue:
        if remaining <= 0:
            break
        take = min(p.qty, remaining)
        if take > 0:
            allocations.append((p, take))
            remaining -= take
    return allocations, remaining


@dataclass(frozen=True)
class ShortfallSplit:
    fund_pays: Decimal  # ≥ 0: what the fund draws
    adl_qty: Decimal  # the quantity deleveraged at the bankruptcy price instead
    uncovered: Decimal  # the part of the shortfall the fund does not pay


_QTY_STEP = Decimal("1e-8")  # quantities are deleveraged in whole satoshi-sized steps, rounded up


def split_shortfall(*, shortfall: Decimal, available: Decimal, qty: Decimal) -> ShortfallSplit:
    """Share a liquidation's shortfall between the fund (down to its floor) and auto-deleveraging.

    The loss per unit is the same across the quantity, so the fund covers the loss on the part it can afford
    and the rest of the quantity is deleveraged at the bankruptcy price, where it loses nothing.
    """
    available = max(available, ZERO)
    if shortfall <= available:
        return ShortfallSplit(shortfall, ZERO, ZERO)
    uncovered = shortfall - available
    adl_qty = min(qty, (qty * uncovered / shortfall).quantize(_QTY_STEP, rounding="ROUND_CEILING"))
    return ShortfallSplit(available, adl_qty, uncovered)
