"""Demo data: liquidations, auto-deleveraging and the insurance fund ledger.

Over the last week of the perpetual's price history: a risk officer's top-up of the USDT fund (approved by
the administrator), liquidation fills around their bankruptcy prices (most paying in, some drawing), then
one large fill the fund cannot cover, so the rest is deleveraged against the opposite side's positions,
and a second top-up to refill the fund. Everything goes through the services, so the ledger, the ADL event
and the operations log tell one story. Positions come from the margin section; without any, the ADL
liquidation is left out.
"""

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Sum

from accounts.models import Account, User
from backoffice import approvals, demo
from backoffice.audit import Actor
from trading_risk import liquidation
from trading_risk.models import AdlEvent, Instrument, InstrumentPrice, InsuranceFund, Liquidation, Position

PREFIX = "demo-liq-"
FILLS = 9
FIRST_TOP_UP, REFILL = Decimal(2500), Decimal(5000)
CENT = Decimal("0.01")


@demo.section("liquidations")
def build_liquidations(rng: random.Random, now: datetime, options: demo.DemoOptions) -> str:
    if Liquidation.objects.filter(liquidation_id__startswith=PREFIX).exists():
        return "already there (demo liquidations exist)"
    perp = Instrument.objects.filter(symbol=demo.PERPETUAL).first()
    accounts = _liquidated_accounts(perp, rng)
    if perp is None or not perp.prices.exists() or not accounts:
        return "skipped (no perpetual with prices, or no accounts)"
    start = now - timedelta(days=6)
    approved = _top_up(FIRST_TOP_UP, reason="Opening balance of the USDT insurance fund", now=start)
    for n in range(FILLS):
        at = start + timedelta(hours=2 + n * 15, minutes=rng.randint(0, 59))
        _liquidate(n, rng, perp, rng.choice(accounts), at=at, worse=n % 3 == 2)
    adl = _deleverage(rng, perp, accounts, at=now - timedelta(hours=3))
    if adl and approved:
        _top_up(REFILL, reason="Refill after auto-deleveraging", now=now - timedelta(hours=1))
    paid = Liquidation.objects.filter(liquidation_id__startswith=PREFIX).aggregate(s=Sum("fund_paid"))["s"]
    tail = f"one ADL event of {adl.qty.normalize()} BTC" if adl else "no ADL (no positions to deleverage)"
    return f"{FILLS + bool(adl)} liquidations, net {paid.quantize(CENT)} USDT to the fund, {tail}"


def _liquidated_accounts(perp, rng: random.Random) -> list[Account]:
    if perp is not None:
        holders = list(Account.objects.filter(positions__instrument=perp, positions__qty__gt=0).order_by("pk")[:50])
        if holders:
            return holders
    futures = list(Account.objects.filter(kind=Account.Kind.FUTURES).order_by("pk")[:50])
    return futures or list(Account.objects.order_by("pk")[:50])


def _mark(perp, at: datetime) -> Decimal:
    price = InstrumentPrice.objects.filter(instrument=perp, at__lte=at).order_by("-at").first()
    return (price or perp.prices.order_by("at").first()).mark_price


def _top_up(amount: Decimal, *, reason: str, now: datetime) -> bool:
    """Requested by the demo risk officer, approved by the administrator (four eyes)."""
    requester, approver = User.objects.filter(username="risk").first(), User.objects.filter(username="admin").first()
    if requester is None or approver is None:
        return False
    change = liquidation.request_adjustment(
        asset="USDT", kind="TOP_UP", amount=amount, reason=reason, actor=Actor.staff(requester), now=now
    )
    approvals.approve_change(change_request=change, actor=Actor.staff(approver), reason="Checked", now=now)
    return True


def _liquidate(n: int, rng: random.Random, perp, account: Account, *, at: datetime, worse: bool) -> None:
    side = rng.choice(("LONG", "SHORT"))
    bankruptcy = (_mark(perp, at) * Decimal(1 - (0.004 if side == "LONG" else -0.004))).quantize(CENT)
    slip = Decimal(rng.uniform(0.0005, 0.003)) * (-1 if worse else 1)
    sign = 1 if side == "LONG" else -1
    item = liquidation.LiquidationIn(
        liquidation_id=f"{PREFIX}{n}",
        account_id=account.external_id,
        symbol=perp.symbol,
        side=side,
        qty=Decimal(rng.randint(5, 150)) / 100,
        bankruptcy_price=bankruptcy,
        fill_price=(bankruptcy * (1 + sign * slip)).quantize(CENT),
        at=at,
    )
    liquidation.record_liquidations(items=[item], actor=demo.ACTOR, now=at)


def _deleverage(rng: random.Random, perp, accounts: list[Account], *, at: datetime) -> AdlEvent | None:
    """A fill far worse than bankruptcy on the side whose counterparties hold positions."""
    held = dict(
        Position.objects.filter(instrument=perp, qty__gt=0).values_list("side").annotate(q=Sum("qty")).order_by()
    )
    if not held:
        return None
    counterparty = max(held, key=held.get)
    side = "SHORT" if counterparty == "LONG" else "LONG"
    candidates = [a for a in accounts if not Position.objects.filter(account=a, instrument=perp, side=counterparty)]
    account = (candidates or accounts)[0]
    sign = 1 if side == "LONG" else -1
    bankruptcy = (_mark(perp, at) * (1 - sign * Decimal("0.004"))).quantize(CENT)
    # A 2 % worse fill on enough quantity that the shortfall is twice what the fund holds.
    fund = InsuranceFund.objects.filter(asset=perp.quote).values_list("balance", flat=True).first() or Decimal(0)
    needed = (2 * fund / (bankruptcy * Decimal("0.02"))).quantize(CENT)
    qty = max(min(Decimal(8), (held[counterparty] * Decimal("0.8")).quantize(CENT)), needed, Decimal("0.01"))
    item = liquidation.LiquidationIn(
        liquidation_id=f"{PREFIX}adl",
        account_id=account.external_id,
        symbol=perp.symbol,
        side=side,
        qty=qty,
        bankruptcy_price=bankruptcy,
        fill_price=(bankruptcy * (1 - sign * Decimal("0.02"))).quantize(CENT),
        at=at,
    )
    liquidation.record_liquidations(items=[item], actor=demo.ACTOR, now=at)
    return AdlEvent.objects.filter(liquidation__liquidation_id=item.liquidation_id).first()
