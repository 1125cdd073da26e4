"""Reads with business meaning over instruments and prices."""

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
