"""Reads with business meaning over instruments and prices."""

import bisect
from datetime import datetime
from decimal import Decimal

from backoffice.errors import DomainError
from trading_risk.models import AssetPrice

BTC = "BTC"


class Unpriced(DomainError):
    """An amount cannot be valued: no reference price at or before its time."""

    code = "unpriced"
    status = 400


def usd_price(asset: str, *, at: datetime) -> Decimal | None:
    """The latest reference price of `asset` in USD at or before `at`, or None."""
    if asset == "USD":
        return Decimal(1)
    return AssetPrice.objects.filter(asset=asset, at__lte=at).order_by("-at").values_list("usd", flat=True).first()


def btc_equivalent(asset: str, amount: Decimal, *, at: datetime) -> Decimal:
    """`amount` of `asset` in BTC at the latest prices at or before `at`; Unpriced if either is missing."""
    if asset == BTC:
        return amount
    asset_usd, btc_usd = usd_price(asset, at=at), usd_price(BTC, at=at)
    if asset_usd is None or btc_usd is None:
        missing = asset if asset_usd is None else BTC
        raise Unpriced(f"No reference price for {missing} at or before {at.isoformat()}; send /prices/ first.")
    return amount * asset_usd / btc_usd


class PriceSeries:
    """Reference prices of a few assets over a span, for valuing a whole batch with one query."""

    def __init__(self, series: dict[str, tuple[list[datetime], list[Decimal]]]):
        self.series = series
        self._rates: dict[tuple, str] = {}

    @classmethod
    def load(cls, assets: set[str], *, start: datetime, end: datetime) -> "PriceSeries":
        """Every price in [start, end] plus the last one before `start`, per asset."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT asset, at, usd FROM trading_risk_assetprice WHERE asset = ANY(%s) AND at > %s AND at <= %s "
                "UNION ALL SELECT p.asset, p.at, p.usd FROM unnest(%s::text[]) AS a(asset) "
                "CROSS JOIN LATERAL (SELECT asset, at, usd FROM trading_risk_assetprice WHERE asset = a.asset "
                "AND at <= %s ORDER BY at DESC LIMIT 1) p ORDER BY 2",
                [list(assets), start, end, list(assets), start],
            )
            rows = cursor.fetchall()
        series: dict[str, tuple[list[datetime], list[Decimal]]] = {}
        for asset, at, usd in rows:
            times, prices = series.setdefault(asset, ([], []))
            times.append(at)
            prices.append(usd)
        return cls(series)

    def usd(self, asset: str, at: datetime) -> Decimal | None:
        if asset == "USD":
            return Decimal(1)
        times, prices = self.series.get(asset, ((), ()))
        i = bisect.bisect_right(times, at)
        return prices[i - 1] if i else None

    def btc_rate_text(self, asset: str, at: datetime) -> str:
        """btc_rate as COPY text ('\\N' for None), memoised per pair of price points: a batch has few."""
        key = (asset, self._index(asset, at), self._index(BTC, at))
        if (text := self._rates.get(key)) is None:
            rate = self.btc_rate(asset, at)
            text = self._rates[key] = "\\N" if rate is None else str(rate)
        return text

    def constant_between(self, start: datetime, end: datetime) -> bool:
        """True when no asset has a price point after `start` (so every moment up to `end` has the same rates)."""
        return all(not times or times[-1] <= start for times, _ in self.series.values())

    def _index(self, asset: str, at: datetime) -> int:
        return bisect.bisect_right(self.series.get(asset, ((), ()))[0], at)

    def btc_rate(self, asset: str, at: datetime) -> Decimal | None:
        """BTC per unit of `asset` at `at`, or None when either price is unknown."""
        if asset == BTC:
            return Decimal(1)
        asset_usd, btc_usd = self.usd(asset, at), self.usd(BTC, at)
        if asset_usd is None or btc_usd is None:
            return None
        return asset_usd / btc_usd


# ---- surveillance reads ----------------------------------------------------------------------------------
def alerts_per_day_by_rule(*, since: datetime) -> dict[str, dict]:
    """{rule: {date: count}} of alerts opened since `since` (for the dashboard chart)."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from trading_risk.models import Alert

    rows = (
        Alert.objects.filter(opened_at__gte=since)
        .annotate(day=TruncDate("opened_at"))
        .values("rule", "day")
        .annotate(n=Count("id"))
    )
    out: dict[str, dict] = {}
    for row in rows:
        out.setdefault(row["rule"], {})[row["day"]] = row["n"]
    return out


def top_accounts_by_alerts(*, since: datetime, limit: int = 10) -> list[dict]:
    """The accounts with the most alerts since `since`, with their customer."""
    from django.db.models import Count

    from trading_risk.models import Alert

    return list(
        Alert.objects.filter(opened_at__gte=since, account__isnull=False)
        .values("account_id", "account__external_id", "customer__name", "customer_id")
        .annotate(n=Count("id"))
        .order_by("-n", "account_id")[:limit]
    )


def trades_behind(alert, *, limit: int = 200) -> list:
    """The trades (or, for the order/cancel ladder, the order events) that raised an alert."""
    from datetime import datetime as dt

    from trading_risk.models import OrderEvent, Trade

    details = alert.details or {}
    start, end = details.get("window_start"), details.get("window_end")
    if not (start and end and alert.account_id):
        return []
    start, end = dt.fromisoformat(start), dt.fromisoformat(end)
    if alert.rule == "frequent_order_cancel":
        return list(
            OrderEvent.objects.filter(
                account_id=alert.account_id, symbol=alert.symbol, at__gt=start, at__lte=end
            ).order_by("-at")[:limit]
        )
    trades = Trade.objects.filter(executed_at__gte=start, executed_at__lt=end)
    accounts = [int(a) for a in details.get("accounts", [alert.account_id])]
    if alert.rule == "self_trade":
        trades = trades.filter(buy_account_id=alert.account_id, sell_account_id=alert.account_id)
    elif alert.rule == "wash_trading":
        trades = trades.filter(buy_account_id__in=accounts, sell_account_id__in=accounts)
    else:
        from django.db.models import Q

        trades = trades.filter(Q(buy_account_id=alert.account_id) | Q(sell_account_id=alert.account_id))
    if alert.symbol:
        trades = trades.filter(symbol=alert.symbol)
    return list(trades.select_related("buy_account", "sell_account").order_by("-executed_at")[:limit])
