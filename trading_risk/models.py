"""Instruments and reference prices (the rest of trading risk builds on these)."""

from django.db import models
from django.db.models import Q


class Instrument(models.Model):
    """A tradable spot pair, perpetual or dated future."""

    class Kind(models.TextChoices):
        SPOT = "SPOT", "Spot"
        PERPETUAL = "PERPETUAL", "Perpetual"
        FUTURE = "FUTURE", "Dated future"

    symbol = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=10, choices=Kind)
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16)
    listed_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="FUTURE", expires_at__isnull=False) | ~Q(kind="FUTURE"),
                name="instrument_future_expires",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=models.F("listed_at")),
                name="instrument_expires_after_listing",
            ),
        ]

    def __str__(self) -> str:
        return self.symbol


class AssetPrice(models.Model):
    """An asset's reference price in USD at a moment; the basis of every 'in BTC' valuation."""

    asset = models.CharField(max_length=16)
    at = models.DateTimeField()
    usd = models.DecimalField(max_digits=38, decimal_places=18)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["asset", "at"], name="asset_price_unique"),
            models.CheckConstraint(condition=Q(usd__gt=0), name="asset_price_positive"),
        ]
        indexes = [models.Index(fields=["asset", "-at"], name="asset_price_latest_idx")]

    def __str__(self) -> str:
        return f"{self.asset} = {self.usd} USD at {self.at:%Y-%m-%d %H:%M:%S}"


class InstrumentPrice(models.Model):
    """An instrument's index and mark price at a moment."""

    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="prices")
    at = models.DateTimeField()
    index_price = models.DecimalField(max_digits=38, decimal_places=18)
    mark_price = models.DecimalField(max_digits=38, decimal_places=18)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "at"], name="instrument_price_unique"),
            models.CheckConstraint(condition=Q(index_price__gt=0, mark_price__gt=0), name="instrument_price_positive"),
        ]
        indexes = [models.Index(fields=["instrument", "-at"], name="instrument_price_latest_idx")]

    def __str__(self) -> str:
        return f"{self.instrument_id} index {self.index_price} mark {self.mark_price} at {self.at:%Y-%m-%d %H:%M:%S}"
