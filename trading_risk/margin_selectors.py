"""Reads of margin with business meaning: one account's margin at the current mark, how margin ratios are
distributed, and the books nearest liquidation."""

from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F

from accounts.models import Account
from backoffice.errors import NotFound
from trading_risk import margin, margin_engine
from trading_risk.models import AccountMargin, Balance, Position


def account_margin_detail(account_external_id: str, *, now: datetime) -> dict:
    """An account's books at the current mark, exactly: tier, rates, equity, MM, IM, warning line, ratio,
    class (as computed now and as stored), and each position's prices and the numbers the formulas used."""
    account = Account.objects.filter(external_id=account_external_id).first()
    if account is None:
        raise NotFound("No such account.")
    market = margin_engine.load_market(now=now)
    rows = list(Position.objects.filter(account=account, qty__gt=0).select_related("instrument").order_by("pk"))
    keys = {
        (account.pk, market.instruments[p.instrument_id].book) for p in rows if p.instrument_id in market.instruments
    }
    stored = {m.book: m for m in AccountMargin.objects.filter(account=account)}
    keys |= {(account.pk, book) for book in stored}
    figures = margin_engine.evaluate(keys, market)
    balances = list(Balance.objects.filter(account=account).order_by("asset"))
    return {
        "account_id": account.external_id,
        "at": now.isoformat(),
        "warning_fraction": market.warning_fraction,
        "balances": [_balance_out(b, market) for b in balances],
        "books": [
            _book_out(book, figures[(account.pk, book)], stored.get(book), rows, market)
            for book in sorted(b for _, b in keys)
        ],
    }


def _balance_out(balance: Balance, market) -> dict:
    return {
        "asset": balance.asset,
        "total": balance.total,
        "available": balance.available,
        "available_usd": market.balance_usd(balance.asset, balance.available),
    }


def _book_out(book: str, figures: margin.BookMargin, stored: AccountMargin | None, rows, market) -> dict:
    positions = [
        p for p in rows if p.instrument_id in market.instruments and market.instruments[p.instrument_id].book == book
    ]
    return {
        "book": book,
        "classification": figures.classification,
        "stored_classification": stored.classification if stored else None,
        "classified_at": stored.classified_at.isoformat() if stored else None,
        "equity": figures.equity,
        "maintenance_margin": figures.maintenance_margin,
        "initial_margin": figures.initial_margin,
        "warning_line": figures.warning_line,
        "notional": figures.notional,
        "margin_ratio": figures.equity / figures.maintenance_margin if figures.maintenance_margin > 0 else None,
        "positions": [_position_out(p, market) for p in positions],
    }


def _position_out(position: Position, market) -> dict:
    terms = market.instruments[position.instrument_id]
    side = 1 if position.side == Position.Side.LONG else -1
    row = margin_engine.PositionRow(
        position.account_id, position.instrument_id, side, position.qty, position.entry_price, position.margin
    )
    at_mark = margin_engine.position_at_mark(row, market)
    tier = terms.limits.tier(at_mark.notional)
    return {
        "symbol": terms.symbol,
        "side": position.side.lower(),
        "qty": position.qty,
        "entry_price": position.entry_price,
        "margin": position.margin,
        "mark_price": terms.mark,
        "settlement": terms.limits.settlement.lower(),
        "usd_rate": terms.usd_rate,
        "risk_limit_version": position.risk_limit.version if position.risk_limit_id else None,
        "size_at_mark": at_mark.notional,
        "maintenance_rate_at_mark": tier.maintenance_rate,
        "initial_rate_at_mark": tier.initial_rate,
        "maintenance_amount_at_mark": tier.maintenance_amount,
        "unrealised_pnl": at_mark.unrealised_pnl,
        "maintenance_margin": at_mark.maintenance_margin,
        "initial_margin": at_mark.initial_margin,
        "liquidating": at_mark.liquidating,
        "maintenance_rate_at_entry": position.maintenance_rate,
        "initial_rate_at_entry": position.initial_rate,
        "maintenance_amount_at_entry": position.maintenance_amount,
        "liquidation_price": position.liquidation_price,
        "bankruptcy_price": position.bankruptcy_price,
    }


RATIO_BUCKETS = (Decimal(1), Decimal("1.25"), Decimal("1.5"), Decimal(2), Decimal(3), Decimal(5), Decimal(10))


def margin_ratio_distribution() -> dict:
    """How many books sit in each class, and in each band of equity / MM (as last classified)."""
    classes = dict(
        AccountMargin.objects.values_list("classification").annotate(n=Count("pk")).values_list("classification", "n")
    )
    bands = {}
    rows = AccountMargin.objects.filter(maintenance_margin__gt=0).annotate(ratio=F("equity") / F("maintenance_margin"))
    lower = None
    for upper in (*RATIO_BUCKETS, None):
        band = rows
        if lower is not None:
            band = band.filter(ratio__gte=lower)
        if upper is not None:
            band = band.filter(ratio__lt=upper)
        bands[f"{lower or 0}–{upper if upper is not None else '∞'}"] = band.count()
        lower = upper
    return {"classes": {c: classes.get(c, 0) for c in margin_engine.CLASSES}, "ratio_bands": bands}


def nearest_liquidation(*, limit: int = 20) -> list[AccountMargin]:
    """The books with the lowest equity / MM, worst first (as last classified)."""
    return list(
        AccountMargin.objects.filter(maintenance_margin__gt=0)
        .annotate(ratio=F("equity") / F("maintenance_margin"))
        .select_related("account", "account__customer")
        .order_by("ratio", "account_id", "book")[:limit]
    )
