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


class Alert(models.Model):
    """Something a rule noticed that a person should look at (security, surveillance, margin …)."""

    class Severity(models.TextChoices):
        GENERAL = "GENERAL", "General"
        MAJOR = "MAJOR", "Major"
        CRITICAL = "CRITICAL", "Critical"

    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        CLOSED = "CLOSED", "Closed"

    class Disposition(models.TextChoices):
        FALSE_POSITIVE = "FALSE_POSITIVE", "False positive"
        WARNED = "WARNED", "Customer warned"
        RESTRICTED = "RESTRICTED", "Restricted"
        ESCALATED = "ESCALATED", "Escalated"

    rule = models.CharField(max_length=60, db_index=True)
    severity = models.CharField(max_length=8, choices=Severity)
    status = models.CharField(max_length=6, choices=Status, default=Status.OPEN)
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="alerts")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="alerts")
    symbol = models.CharField(max_length=32, blank=True)
    summary = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    # The rule's own key for "the same finding", so a rerun or a duplicate event opens nothing new.
    dedup_key = models.CharField(max_length=200, unique=True)
    opened_at = models.DateTimeField(db_index=True)
    disposition = models.CharField(max_length=16, choices=Disposition, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)
    closing_reason = models.TextField(blank=True)

    class Meta:
        permissions = [("work_alert", "Can be assigned and close alerts")]
        indexes = [models.Index(fields=["status", "-opened_at"], name="alert_queue_idx")]

    def __str__(self) -> str:
        return f"Alert #{self.pk} {self.rule} ({self.get_status_display()})"
