"""Builders for positions, margin states, marks and insurance fund top-ups (rows written directly, as the
engine's snapshots would leave them)."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from backoffice import approvals
from backoffice.audit import Actor
from tests.factories import NOW, make_account
from tests.trading_risk.conftest import make_instrument
from trading_risk import liquidation
from trading_risk.models import AccountMargin, InstrumentPrice, Position

D = Decimal


def make_perpetual(symbol="BTCUSDT-PERP", *, base="BTC", quote="USDT"):
    return make_instrument(symbol, base=base, quote=quote, kind="PERPETUAL")


def set_mark(instrument, mark, *, at=NOW):
    InstrumentPrice.objects.create(
        instrument=instrument, at=at, index_price=D(mark), mark_price=D(mark), received_at=at
    )


def make_position(
    instrument,
    *,
    account=None,
    side="LONG",
    qty="1",
    entry="50000",
    margin="5000",
    liquidation_price=None,
    bankruptcy_price=None,
    maintenance_rate="0.004",
    initial_rate="0.1",
    at=NOW - timedelta(hours=1),
):
    return Position.objects.create(
        account=account or make_account(kind="FUTURES"),
        instrument=instrument,
        side=side,
        qty=D(qty),
        entry_price=D(entry),
        margin=D(margin),
        at=at,
        received_at=at,
        maintenance_rate=D(maintenance_rate),
        initial_rate=D(initial_rate),
        liquidation_price=None if liquidation_price is None else D(liquidation_price),
        bankruptcy_price=None if bankruptcy_price is None else D(bankruptcy_price),
    )


def make_margin_state(account, *, equity, maintenance, initial=None, classification="HEALTHY"):
    maintenance = D(maintenance)
    return AccountMargin.objects.create(
        account=account,
        equity=D(equity),
        maintenance_margin=maintenance,
        initial_margin=D(initial) if initial is not None else maintenance * 2,
        notional=maintenance * 100,
        classification=classification,
        computed_at=NOW,
        classified_at=NOW,
    )


def top_up(asset, amount, *, requester, approver, kind="TOP_UP"):
    """Put money into (or take it out of) a fund the way staff do: requested by one, approved by another."""
    change = liquidation.request_adjustment(
        asset=asset,
        kind=kind,
        amount=D(amount),
        reason="seed the fund",
        actor=Actor.staff(requester),
        now=timezone.now(),
    )
    return approvals.approve_change(change_request=change, actor=Actor.staff(approver), reason="ok", now=timezone.now())


def liquidation_item(n, account, *, symbol="BTCUSDT-PERP", side="long", qty="1", bp="45000", fill="45100", **extra):
    return {
        "liquidation_id": f"L{n}",
        "account_id": account.external_id,
        "symbol": symbol,
        "side": side,
        "qty": qty,
        "bankruptcy_price": bp,
        "fill_price": fill,
        "at": NOW.isoformat(),
        **extra,
    }
