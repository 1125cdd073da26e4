"""Demo: two days of trades and order events, with a planted case for every surveillance rule.

Background trading between the first few hundred customers' accounts at prices near the stored
reference prices, then the planted cases: a self-trade above the threshold, a wash-trade pair between
two accounts of one customer, an account over the excessive-trading warning line, and an account
crossing the order/cancel line on one symbol (the ladder takes its first step). Everything goes
through the ingestion service; the hourly detectors then run over both days so alerts exist.
"""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count

from accounts.models import Account, Customer
from backoffice import demo
from trading_risk import detectors, ingest, partitions
from trading_risk.models import AssetPrice, Instrument, InstrumentPrice, Trade

ACTIVE_CUSTOMERS = 500
BACKGROUND_TRADES = 3000
BACKGROUND_ORDERS = 1000  # orders, each placed and most cancelled
BATCH = 5000
PLANTED_SYMBOL = "BTCUSDT"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "ETHBTC", "XRPUSDT", "SOLUSDT", "BTCUSDT-PERP")
PREFIX = "demo-"


@dataclass(frozen=True)
class DemoTrade:
    trade_id: str
    symbol: str
    price: str
    qty: str
    buy_account_id: str
    sell_account_id: str
    buy_order_id: str
    sell_order_id: str
    aggressor: str
    executed_at: datetime


@dataclass(frozen=True)
class DemoOrderEvent:
    event_id: str
    order_id: str
    account_id: str
    symbol: str
    type: str
    side: str
    price: str
    qty: str
    at: datetime


@demo.section("surveillance")
def build_surveillance(rng: random.Random, now: datetime, options: demo.DemoOptions) -> str:
    if Trade.objects.filter(trade_id__startswith=PREFIX).exists():
        return "already there (demo trades exist)"
    accounts = list(
        Account.objects.filter(customer__in=Customer.objects.order_by("pk")[:ACTIVE_CUSTOMERS])
        .order_by("pk")
        .values_list("external_id", flat=True)
    )
    prices = _reference_prices()
    if len(accounts) < 40 or PLANTED_SYMBOL not in prices:
        return "skipped (needs at least 40 accounts and reference prices)"
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)  # the last full hour
    start = end - timedelta(days=2)
    partitions.ensure_partitions(start=start.date() - timedelta(days=1), days=5)
    # The accounts were likely created in this very transaction: resolve them afresh, not from a cache
    # an earlier (rolled-back) load in this process may have filled.
    ingest.clear_caches()

    pair = _same_owner_pair()
    # Kept out of the background so each case stands on its own.
    planted_accounts = [a for a in accounts if a not in (pair or ())][:3]
    quiet = {*planted_accounts, *(pair or ())}
    crowd = [a for a in accounts if a not in quiet]
    make = _Factory(rng, prices)

    trades = make.background_trades(crowd, start, end)
    events = make.background_events(crowd, start, end)
    planted = []
    self_trader, heavy, spoofer = planted_accounts[0], planted_accounts[1], planted_accounts[2]
    trades += make.block(PLANTED_SYMBOL, [(self_trader, self_trader)] * 12, Decimal(100), end - timedelta(hours=10))
    planted.append(f"self-trade 1200 BTC ({self_trader})")
    if pair:
        trades += make.block(PLANTED_SYMBOL, [pair, pair[::-1]] * 6, Decimal(100), end - timedelta(hours=8))
        planted.append(f"wash-trade pair 1200 BTC ({pair[0]} ⇄ {pair[1]})")
    counterparties = rng.sample(crowd, 30)
    trades += make.block(
        PLANTED_SYMBOL,
        [(heavy, c) if i % 2 else (c, heavy) for i, c in enumerate(counterparties)],
        Decimal(45),
        end - timedelta(hours=6),
    )
    planted.append(f"excessive trading 1350 BTC ({heavy})")

    trades.sort(key=lambda t: t.executed_at)
    for i in range(0, len(trades), BATCH):
        ingest.ingest_trades(trades=trades[i : i + BATCH], now=now)
    events.sort(key=lambda e: e.at)
    events += make.order_burst(spoofer, "ETHUSDT", 260, now - timedelta(hours=2))
    for i in range(0, len(events), BATCH):
        ingest.ingest_order_events(events=events[i : i + BATCH], now=now)
    planted.append(f"520 order/cancel events on ETHUSDT ({spoofer})")

    found = {}
    for window_end in (end - timedelta(days=1), end):
        for name, n in detectors.run_detectors(detectors=detectors.HOURLY, window_end=window_end, now=now).items():
            found[name] = found.get(name, 0) + n
    alerts = ", ".join(f"{name} {n}" for name, n in found.items())
    return f"{len(trades)} trades, {len(events)} order events; planted: {'; '.join(planted)}; alerts: {alerts}"


def _reference_prices() -> dict[str, Decimal]:
    """Each instrument's latest index price, or for a spot pair its base's USD price over its quote's."""
    usd = {}
    for row in AssetPrice.objects.order_by("asset", "-at").distinct("asset").values("asset", "usd"):
        usd[row["asset"]] = row["usd"]
    prices = {}
    for instrument in Instrument.objects.filter(symbol__in=SYMBOLS):
        latest = InstrumentPrice.objects.filter(instrument=instrument).order_by("-at").first()
        if latest is not None:
            prices[instrument.symbol] = latest.index_price
        elif instrument.base in usd and instrument.quote in usd:
            prices[instrument.symbol] = usd[instrument.base] / usd[instrument.quote]
    return prices


def _same_owner_pair() -> tuple[str, str] | None:
    customer = Customer.objects.annotate(n=Count("accounts")).filter(n__gte=2).order_by("pk").first()
    if customer is None:
        return None
    first, second = customer.accounts.order_by("pk").values_list("external_id", flat=True)[:2]
    return first, second


class _Factory:
    def __init__(self, rng: random.Random, prices: dict[str, Decimal]):
        self.rng = rng
        self.prices = prices
        self.symbols = sorted(prices)
        self.serial = 0

    def _next(self, kind: str) -> str:
        self.serial += 1
        return f"{PREFIX}{kind}-{self.serial:07d}"

    def _price(self, symbol: str) -> str:
        reference = self.prices[symbol]
        price = reference * Decimal(1 + self.rng.uniform(-0.004, 0.004))
        step = Decimal("0.00000001") if reference < 1 else Decimal("0.0001") if reference < 100 else Decimal("0.01")
        return f"{price.quantize(step):f}"

    def _qty(self, symbol: str) -> Decimal:
        # Small retail sizes: about 10 to 5,000 USDT worth (or the ETH equivalent for ETHBTC).
        usd = Decimal(round(10 ** self.rng.uniform(1, 3.7), 2))
        reference = self.prices[symbol] * (self.prices.get("BTCUSDT", 1) if symbol.endswith("BTC") else 1)
        return (usd / reference).quantize(Decimal("0.000001")) or Decimal("0.000001")

    def _trade(self, symbol, buyer, seller, qty: Decimal, at: datetime) -> DemoTrade:
        return DemoTrade(
            trade_id=self._next("t"),
            symbol=symbol,
            price=self._price(symbol),
            qty=f"{qty:f}",
            buy_account_id=buyer,
            sell_account_id=seller,
            buy_order_id=self._next("o"),
            sell_order_id=self._next("o"),
            aggressor=self.rng.choice(("buy", "sell")),
            executed_at=at,
        )

    def background_trades(self, accounts: list[str], start: datetime, end: datetime) -> list[DemoTrade]:
        seconds = int((end - start).total_seconds())
        trades = []
        for _ in range(BACKGROUND_TRADES):
            symbol = self.rng.choice(self.symbols)
            buyer, seller = self.rng.sample(accounts, 2)
            at = start + timedelta(seconds=self.rng.randrange(seconds), microseconds=self.rng.randrange(10**6))
            trades.append(self._trade(symbol, buyer, seller, self._qty(symbol), at))
        return trades

    def block(self, symbol: str, sides: list[tuple[str, str]], qty: Decimal, at: datetime) -> list[DemoTrade]:
        """Large trades a few minutes apart, from `at` on."""
        return [
            self._trade(symbol, buyer, seller, qty, at + timedelta(minutes=3 * i, seconds=self.rng.randrange(60)))
            for i, (buyer, seller) in enumerate(sides)
        ]

    def _order(self, account: str, symbol: str, at: datetime, cancel_after: timedelta | None) -> list[DemoOrderEvent]:
        order_id, side = self._next("o"), self.rng.choice(("buy", "sell"))
        price, qty = self._price(symbol), f"{self._qty(symbol):f}"
        events = [DemoOrderEvent(self._next("e"), order_id, account, symbol, "placed", side, price, qty, at)]
        if cancel_after is not None:
            events.append(
                DemoOrderEvent(
                    self._next("e"), order_id, account, symbol, "cancelled", side, price, qty, at + cancel_after
                )
            )
        return events

    def background_events(self, accounts: list[str], start: datetime, end: datetime) -> list[DemoOrderEvent]:
        seconds = int((end - start).total_seconds())
        events = []
        for _ in range(BACKGROUND_ORDERS):
            at = start + timedelta(seconds=self.rng.randrange(seconds))
            cancel = timedelta(seconds=self.rng.randint(1, 900)) if self.rng.random() < 0.7 else None
            events += self._order(self.rng.choice(accounts), self.rng.choice(self.symbols), at, cancel)
        return events

    def order_burst(self, account: str, symbol: str, orders: int, at: datetime) -> list[DemoOrderEvent]:
        """Orders placed and cancelled within a second or two, a few seconds apart."""
        events = []
        for i in range(orders):
            events += self._order(account, symbol, at + timedelta(seconds=5 * i), timedelta(milliseconds=800))
        return events


# Margin sections build on the instruments and prices above; importing registers them in this order.
# isort: off
from trading_risk import demo_margin  # noqa: E402,F401
from trading_risk import demo_liquidation  # noqa: E402,F401
# isort: on
