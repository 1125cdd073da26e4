"""Reads over positions at the latest mark: the liquidation queue, ADL rankings, the insurance fund's history,
and the margin picture the dashboard shows (ratio distribution, accounts nearest liquidation, one account's
numbers re-derived with trading_risk.margin from the stored rows).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q

from trading_risk import margin
from trading_risk.models import (
    AccountMargin,
    Instrument,
    InstrumentPrice,
    InsuranceFund,
    InsuranceFundEntry,
    Position,
    RiskLimitTable,
)

LONG, SHORT = Position.Side.LONG, Position.Side.SHORT
SIDE_SIGN = {LONG: 1, SHORT: -1}
OPPOSITE = {LONG: SHORT, SHORT: LONG}
SCORE_PLACES = Decimal("1e-12")


@dataclass(frozen=True)
class Mark:
    instrument_id: int
    symbol: str
    price: Decimal
    at: datetime


def latest_marks(*, symbols: list[str] | None = None) -> dict[int, Mark]:
    """The latest mark price of each instrument (or of the named ones) that has one, by instrument id."""
    instruments = Instrument.objects.all() if symbols is None else Instrument.objects.filter(symbol__in=symbols)
    marks = {}
    for instrument_id, symbol in instruments.values_list("pk", "symbol"):
        row = (
            InstrumentPrice.objects.filter(instrument_id=instrument_id)
            .order_by("-at")
            .values_list("mark_price", "at")
            .first()
        )
        if row is not None:
            marks[instrument_id] = Mark(instrument_id, symbol, *row)
    return marks


# ---- the liquidation queue ---------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueEntry:
    position: Position
    mark: Mark

    @property
    def past_by(self) -> Decimal:
        """How far the mark has gone past the liquidation price, in price (always ≥ 0)."""
        return SIDE_SIGN[self.position.side] * (self.position.liquidation_price - self.mark.price)

    @property
    def past_by_ratio(self) -> Decimal:
        return self.past_by / self.position.liquidation_price

    @property
    def past_by_percent(self) -> Decimal:
        return self.past_by_ratio * 100


def crossed(marks: dict[int, Mark]) -> Q:
    """Positions whose mark has reached their liquidation price (long: mark ≤ LP; short: mark ≥ LP)."""
    condition = Q(pk__in=[])
    for instrument_id, mark in marks.items():
        condition |= Q(instrument_id=instrument_id) & (
            Q(side=LONG, liquidation_price__gte=mark.price) | Q(side=SHORT, liquidation_price__lte=mark.price)
        )
    return condition


def liquidation_queue(*, symbol: str | None = None, after: int = 0, limit: int = 1000) -> list[QueueEntry]:
    """Positions past their liquidation price at the latest mark, by position id after the cursor."""
    marks = latest_marks(symbols=None if symbol is None else [symbol])
    if not marks:
        return []
    positions = (
        Position.objects.filter(crossed(marks), qty__gt=0, pk__gt=after)
        .select_related("account", "instrument")
        .order_by("pk")[:limit]
    )
    return [QueueEntry(p, marks[p.instrument_id]) for p in positions]


def most_urgent(*, limit: int) -> list[QueueEntry]:
    """The queue across symbols, farthest past first (the dashboard's view)."""
    entries = liquidation_queue(limit=10_000)
    return sorted(entries, key=lambda e: e.past_by_ratio, reverse=True)[:limit]


# ---- auto-deleveraging ranking -----------------------------------------------------------------------
@dataclass(frozen=True)
class Ranked:
    position: Position
    rank: int
    score: Decimal
    quintile: int


def bankruptcy_price(position: Position) -> Decimal:
    """The stored bankruptcy price, or from the position's margin (BP = entry − side·margin/qty) if none."""
    if position.bankruptcy_price is not None:
        return position.bankruptcy_price
    return position.entry_price - SIDE_SIGN[position.side] * position.margin / position.qty


def score(position: Position, mark: Decimal) -> Decimal:
    """The ADL score at `mark`; zero when the position has no effective leverage to measure."""
    side, bp = SIDE_SIGN[position.side], bankruptcy_price(position)
    if position.entry_price <= 0 or side * position.qty * (mark - bp) == 0:
        return Decimal(0)
    raw = margin.adl_score(side=side, qty=position.qty, entry=position.entry_price, mark=mark, bankruptcy=bp)
    return raw.quantize(SCORE_PLACES)


def adl_ranking(*, instrument_id: int, side: str, mark: Decimal, exclude_account_id: int | None = None) -> list[Ranked]:
    """One side's positions in one instrument, highest ADL score first, each with its quintile (1–5)."""
    positions = Position.objects.filter(instrument_id=instrument_id, side=side, qty__gt=0).select_related("account")
    if exclude_account_id is not None:
        positions = positions.exclude(account_id=exclude_account_id)
    by_key = {str(p.pk): p for p in positions}
    entries = [margin.QueuePosition(key, p.qty, score(p, mark)) for key, p in by_key.items()]
    # Ties keep a stable order: the older position first.
    entries.sort(key=lambda e: int(e.key))
    return [
        Ranked(by_key[entry.key], rank, entry.score, quintile)
        for rank, (entry, quintile) in enumerate(margin.adl_queue(entries), start=1)
    ]


def ranking_snapshot(ranking: list[Ranked]) -> list[dict]:
    """A ranking as stored with an ADL event and served to the engine."""
    return [
        {
            "rank": r.rank,
            "account_id": r.position.account.external_id,
            "position_id": r.position.pk,
            "qty": str(r.position.qty),
            "score": str(r.score),
            "quintile": r.quintile,
        }
        for r in ranking
    ]


# ---- settlement and the fund -------------------------------------------------------------------------
@dataclass(frozen=True)
class Settlement:
    kind: str  # LINEAR or INVERSE
    contract_size: Decimal
    asset: str  # the fund that settles it: quote for linear, the coin for inverse


def settlement(instrument: Instrument, *, at: datetime) -> Settlement:
    """How an instrument settles, from its risk-limit table in force at `at` (linear if it has none)."""
    table = (
        RiskLimitTable.objects.filter(instrument=instrument, effective_from__lte=at)
        .order_by("-effective_from", "-version")
        .values_list("settlement", "contract_size")
        .first()
    )
    kind, size = table or (RiskLimitTable.Settlement.LINEAR, Decimal(1))
    asset = instrument.base if kind == RiskLimitTable.Settlement.INVERSE else instrument.quote
    return Settlement(kind, size, asset)


def fund_history(fund: InsuranceFund, *, limit: int = 500) -> list[InsuranceFundEntry]:
    """A fund's latest entries, oldest first."""
    entries = InsuranceFundEntry.objects.filter(fund=fund).select_related("liquidation").order_by("-pk")[:limit]
    return list(reversed(entries))


# ---- the margin picture ------------------------------------------------------------------------------
RATIO_BINS = (
    Decimal(1),
    Decimal("1.1"),
    Decimal("1.25"),
    Decimal("1.5"),
    Decimal(2),
    Decimal(3),
    Decimal(5),
    Decimal(10),
)


def _ratio():
    return ExpressionWrapper(F("equity") / F("maintenance_margin"), output_field=DecimalField())


def margin_ratio_histogram() -> list[tuple[str, int]]:
    """How many accounts fall in each band of equity ÷ maintenance margin (accounts with no MM left out)."""
    edges = (None, *RATIO_BINS, None)
    bands = list(pairwise(edges))
    counts = (
        AccountMargin.objects.filter(maintenance_margin__gt=0)
        .annotate(ratio=_ratio())
        .aggregate(**{f"b{i}": Count("pk", filter=_band(low, high)) for i, (low, high) in enumerate(bands)})
    )
    return [(_band_label(low, high), counts[f"b{i}"]) for i, (low, high) in enumerate(bands)]


def _band(low, high) -> Q:
    condition = Q()
    if low is not None:
        condition &= Q(ratio__gte=low)
    if high is not None:
        condition &= Q(ratio__lt=high)
    return condition


def _band_label(low, high) -> str:
    if low is None:
        return f"< {high}"
    if high is None:
        return f"≥ {low}"
    return f"{low}–{high}"


def nearest_liquidation(*, limit: int) -> list[AccountMargin]:
    """Accounts with the lowest equity ÷ maintenance margin first."""
    return list(
        AccountMargin.objects.filter(maintenance_margin__gt=0)
        .annotate(ratio=_ratio())
        .select_related("account", "account__customer")
        .order_by("ratio", "pk")[:limit]
    )


@dataclass(frozen=True)
class PositionNumbers:
    """One position re-derived from its stored row with the formulas of trading_risk.margin."""

    position: Position
    settlement: str
    mark: Decimal | None
    notional: Decimal | None
    unrealised_pnl: Decimal | None
    maintenance_margin: Decimal | None
    initial_margin: Decimal | None
    warning_rate: Decimal | None
    leverage: Decimal | None
    liquidation_price_simple: Decimal | None
    bankruptcy_price_formula: Decimal | None
    adl_score: Decimal | None


def position_numbers(position: Position, *, mark: Decimal | None, kind: str) -> PositionNumbers:
    side, qty, entry = SIDE_SIGN[position.side], position.qty, position.entry_price
    mmr, imr = position.maintenance_rate, position.initial_rate
    inverse = kind == RiskLimitTable.Settlement.INVERSE
    notional = upnl = mm = im = None
    if mark is not None and qty > 0:
        notional = qty * mark
        upnl = side * qty * (mark - entry)
        mm = notional * mmr - position.maintenance_amount if mmr is not None else None
        im = notional * imr if imr is not None else None
    leverage = 1 / imr if imr else None
    simple = bp = None
    if mmr is not None and imr is not None and entry > 0:
        formula = margin.liquidation_price_inverse_simple if inverse else margin.liquidation_price_linear_simple
        simple = formula(side=side, entry=entry, initial_rate=imr, maintenance_rate=mmr)
        formula = margin.bankruptcy_price_inverse if inverse else margin.bankruptcy_price_linear
        bp = formula(side=side, entry=entry, leverage=leverage)
    warning = margin.warning_rate(mmr, imr) if mmr is not None and imr is not None else None
    adl = score(position, mark) if mark is not None and qty > 0 else None
    return PositionNumbers(position, kind, mark, notional, upnl, mm, im, warning, leverage, simple, bp, adl)


def account_positions(account_id: int) -> list[PositionNumbers]:
    """Every position of an account with its numbers at the latest mark."""
    positions = list(
        Position.objects.filter(account_id=account_id).select_related("instrument", "risk_limit").order_by("pk")
    )
    marks = latest_marks(symbols=[p.instrument.symbol for p in positions])
    return [
        position_numbers(
            p,
            mark=marks[p.instrument_id].price if p.instrument_id in marks else None,
            kind=p.risk_limit.settlement if p.risk_limit else RiskLimitTable.Settlement.LINEAR,
        )
        for p in positions
    ]


def symbols_with_positions() -> list[Instrument]:
    """Instruments with at least one open position, by symbol."""
    return list(Instrument.objects.filter(positions__qty__gt=0).distinct().order_by("symbol"))


def classification_counts() -> dict[str, int]:
    rows = AccountMargin.objects.values("classification").annotate(n=Count("pk"))
    return {row["classification"]: row["n"] for row in rows}


def ratio_of(state: AccountMargin) -> Decimal | None:
    return state.equity / state.maintenance_margin if state.maintenance_margin > 0 else None
