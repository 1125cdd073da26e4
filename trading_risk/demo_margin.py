"""Demo data: risk-limit tables, positions and balances, re-margined so every margin class has accounts.

The perpetual (BTCUSDT-PERP, linear) gets the Binance-style brackets of risk-mechanics.md §1.2, the quarterly
future (BTCUSD, inverse, 100 USD a contract) the BitMEX step table of §1.1. A few hundred futures accounts
take positions near the current mark, sized so that after a 3 % fall of the perpetual's mark most stay
healthy and some land in each other class: isolated longs just above maintenance (warning) or under it
(liquidation), and cross-margined longs whose available balance no longer covers the maintenance margin
(below maintenance). The books are re-margined before and after the move, so the move's transitions send
their notices, impose `below_maintenance_margin` and open liquidation alerts.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from accounts import services as account_services
from accounts.models import Account, Customer
from backoffice import demo
from trading_risk import ingest, margin, margin_engine, positions, risk_limits, services
from trading_risk.models import Instrument, InstrumentPrice, RiskLimitTable

ACCOUNTS = 300
MOVE = Decimal("0.97")  # the perpetual's mark falls 3 %
BINANCE_BRACKETS = [
    ("0", "50000", "0.004", "0.008"),
    ("50000", "250000", "0.005", "0.01"),
    ("250000", "1000000", "0.01", "0.02"),
    ("1000000", "10000000", "0.025", "0.05"),
    ("10000000", "20000000", "0.05", "0.1"),
    ("20000000", "50000000", "0.1", "0.2"),
]
# Out of every 20 accounts: 2 liquidation, 2 below maintenance, 3 warning, the rest healthy.
TARGETS = ["LIQUIDATION"] * 2 + ["BELOW_MAINTENANCE"] * 2 + ["WARNING"] * 3 + ["HEALTHY"] * 13


@dataclass(frozen=True)
class DemoPosition:
    account_id: str
    symbol: str
    side: str
    qty: str
    entry_price: str
    margin: str
    at: datetime


@dataclass(frozen=True)
class DemoBalance:
    account_id: str
    asset: str
    total: str
    available: str
    at: datetime


@demo.section("margin")
def build_margin(rng: random.Random, now: datetime, options: demo.DemoOptions) -> str:
    perpetual = Instrument.objects.filter(symbol=demo.PERPETUAL).first()
    future = Instrument.objects.filter(kind=Instrument.Kind.FUTURE).order_by("-expires_at").first()
    if perpetual is None or future is None:
        return "skipped (needs the perpetual and the future)"
    if RiskLimitTable.objects.filter(instrument=perpetual).exists():
        return "already there (the perpetual has risk limits)"
    marks = _latest_marks([perpetual, future], now)
    if len(marks) < 2:
        return "skipped (needs mark prices)"
    _tables(perpetual, future, now)
    accounts = _futures_accounts(rng, now)
    limits = risk_limits.limits_by_instrument([perpetual, future], at=now)
    book = _Book(rng, now, marks[perpetual.pk], marks[future.pk], limits[perpetual.pk][1], limits[future.pk][1])
    for i, account in enumerate(accounts):
        book.add(account, TARGETS[i % len(TARGETS)], perpetual.symbol, future.symbol)
    ingest.clear_caches()  # accounts opened in this transaction are not in a cache filled before it
    positions.ingest_positions(positions=book.positions, now=now)
    positions.ingest_balances(balances=book.balances, now=now)
    margin_engine.reset_worker()
    margin_engine.remargin(now=now)
    moved_at = _move(perpetual, marks[perpetual.pk] * MOVE, now)
    result = margin_engine.remargin(now=moved_at)
    margin_engine.apply_consequences(now=moved_at)
    return (
        f"{len(book.positions)} positions and {len(book.balances)} balances in {len(accounts)} accounts; "
        f"mark of {perpetual.symbol} {marks[perpetual.pk]:.2f} → {marks[perpetual.pk] * MOVE:.2f}: "
        f"{result.transitions} transitions"
    )


def _latest_marks(instruments: list[Instrument], now: datetime) -> dict[int, Decimal]:
    found = {}
    for instrument in instruments:
        price = InstrumentPrice.objects.filter(instrument=instrument, at__lte=now).order_by("-at").first()
        if price is not None:
            found[instrument.pk] = price.mark_price
    return found


def _tables(perpetual: Instrument, future: Instrument, now: datetime) -> None:
    at = now - timedelta(minutes=5)
    brackets = [{"floor": f, "cap": c, "maintenance_rate": m, "initial_rate": i} for f, c, m, i in BINANCE_BRACKETS]
    risk_limits.create_table(
        payload={"symbol": perpetual.symbol, "model": "BRACKET", "settlement": "LINEAR", "brackets": brackets},
        actor=demo.ACTOR,
        now=at,
    )
    step = {
        "base_limit": "200",
        "step": "150",
        "base_maintenance_rate": "0.005",
        "base_initial_rate": "0.01",
        "step_increment": "0.005",
    }
    risk_limits.create_table(
        payload={"symbol": future.symbol, "model": "STEP", "settlement": "INVERSE", "contract_size": "100", **step},
        actor=demo.ACTOR,
        now=at,
    )


def _futures_accounts(rng: random.Random, now: datetime) -> list[Account]:
    accounts = list(Account.objects.filter(kind=Account.Kind.FUTURES).order_by("pk")[:ACCOUNTS])
    if len(accounts) >= len(TARGETS):
        return accounts
    # A small demo may have too few futures accounts: open some for existing customers.
    for customer in Customer.objects.order_by("pk")[: len(TARGETS) - len(accounts)]:
        account, _ = account_services.upsert_account(
            external_id=f"{customer.external_id}-F",
            customer_external_id=customer.external_id,
            kind=Account.Kind.FUTURES,
            actor=demo.ACTOR,
            now=now,
        )
        accounts.append(account)
    return accounts


def _move(perpetual: Instrument, mark: Decimal, now: datetime) -> datetime:
    latest = InstrumentPrice.objects.filter(instrument=perpetual).order_by("-at").values_list("at", flat=True).first()
    at = max(now, latest + timedelta(seconds=1)) if latest else now
    price = mark.quantize(Decimal("0.01"))
    services.record_prices(
        asset_prices=[],
        instrument_prices=[(0, services.InstrumentPriceIn(perpetual.symbol, price, price, at))],
        actor=demo.ACTOR,
        now=at,
    )
    return at


class _Book:
    """Positions sized from the class each account should have after the move."""

    def __init__(self, rng, now, perp_mark, future_mark, perp_limits, future_limits):
        self.rng, self.now = rng, now
        self.perp_mark, self.future_mark = perp_mark, future_mark
        self.perp_limits, self.future_limits = perp_limits, future_limits
        self.positions: list[DemoPosition] = []
        self.balances: list[DemoBalance] = []

    def add(self, account: Account, target: str, perpetual: str, future: str) -> None:
        qty = Decimal(self.rng.choice(["0.05", "0.1", "0.25", "0.5", "1", "2", "5"]))
        entry = (self.perp_mark * Decimal(1 + self.rng.uniform(-0.004, 0.004))).quantize(Decimal("0.01"))
        if target == "HEALTHY":
            side = self.rng.choice(["long", "short"])
            leverage = Decimal(self.rng.choice([2, 3, 5, 10]))
            self._position(account, perpetual, side, qty, entry, (qty * entry / leverage).quantize(Decimal("0.01")))
            self._balance(account, "USDT", Decimal(self.rng.randint(0, 20000)))
            if self.rng.random() < 0.4:
                self._future(account, future)
            return
        after = self.perp_mark * MOVE
        at_mark = margin.position_at_mark(
            self.perp_limits, side=1, qty=qty, entry=entry, margin=Decimal(0), mark=after, usd_rate=Decimal(1)
        )
        mm, im, pnl = at_mark.maintenance_margin, at_mark.initial_margin, at_mark.unrealised_pnl
        if target == "BELOW_MAINTENANCE":  # cross margin: the balance is all that carries the loss
            self._position(account, perpetual, "long", qty, entry, Decimal(0))
            self._balance(account, "USDT", _up(Decimal("0.7") * mm - pnl))
            return
        equity = mm + (im - mm) / 4 if target == "WARNING" else mm / 2
        self._position(account, perpetual, "long", qty, entry, _up(equity - pnl))

    def _future(self, account: Account, symbol: str) -> None:
        contracts = Decimal(self.rng.choice([100, 500, 2000, 10000]))
        entry = (self.future_mark * Decimal(1 + self.rng.uniform(-0.01, 0.01))).quantize(Decimal("0.5"))
        coins = contracts * self.future_limits.contract_size / entry
        wallet = (coins / Decimal(self.rng.choice([2, 5, 10]))).quantize(Decimal("0.00000001"))
        self._position(account, symbol, self.rng.choice(["long", "short"]), contracts, entry, wallet)

    def _position(self, account, symbol, side, qty, entry, wallet) -> None:
        self.positions.append(
            DemoPosition(
                account.external_id, symbol, side, str(qty), str(entry), str(wallet), self.now - timedelta(minutes=1)
            )
        )

    def _balance(self, account, asset, amount: Decimal) -> None:
        self.balances.append(
            DemoBalance(account.external_id, asset, str(amount), str(amount), self.now - timedelta(minutes=1))
        )


def _up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01")) if value > 0 else Decimal("0.01")
