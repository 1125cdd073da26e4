"""Liquidations, auto-deleveraging events and the insurance fund ledger.

The fund is one row per settlement asset (USDT for linear contracts, the coin for inverse ones) holding the
current balance; its history is the append-only ledger of entries, each with the balance after it. A
database trigger refuses UPDATE and DELETE on liquidations, ledger entries, ADL events and allocations.
"""

from django.db import models
from django.db.models import Q

__all__ = ["AdlAllocation", "AdlEvent", "InsuranceFund", "InsuranceFundEntry", "Liquidation"]

_MONEY = {"max_digits": 38, "decimal_places": 18}


class InsuranceFund(models.Model):
    """The insurance fund of one settlement asset; `balance` always equals its last entry's balance_after."""

    asset = models.CharField(max_length=16, unique=True)
    balance = models.DecimalField(**_MONEY, default=0)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        permissions = [("approve_insurance_fund", "Can approve manual insurance fund top-ups and withdrawals")]
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="insurance_fund_not_negative")]

    def __str__(self) -> str:
        return f"{self.asset} insurance fund"


class Liquidation(models.Model):
    """A liquidation fill reported by the engine, with what it did to the insurance fund."""

    class Side(models.TextChoices):
        LONG = "LONG", "Long"
        SHORT = "SHORT", "Short"

    liquidation_id = models.CharField(max_length=64, unique=True)
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="liquidations")
    instrument = models.ForeignKey("trading_risk.Instrument", on_delete=models.PROTECT, related_name="liquidations")
    side = models.CharField(max_length=5, choices=Side, help_text="the side of the liquidated position")
    qty = models.DecimalField(**_MONEY)
    bankruptcy_price = models.DecimalField(**_MONEY)
    fill_price = models.DecimalField(**_MONEY)
    at = models.DateTimeField()
    received_at = models.DateTimeField()
    fund = models.ForeignKey(InsuranceFund, on_delete=models.PROTECT, related_name="liquidations")
    settlement = models.CharField(max_length=8, help_text="LINEAR or INVERSE: how the fund change was computed")
    contract_size = models.DecimalField(**_MONEY, default=1)
    fund_change = models.DecimalField(
        **_MONEY, help_text="surplus (+) or shortfall (−) of the fill against the bankruptcy price"
    )
    fund_paid = models.DecimalField(**_MONEY, help_text="what the fund actually took in (+) or paid (−)")
    adl_qty = models.DecimalField(**_MONEY, default=0, help_text="quantity deleveraged because the fund ran short")
    result = models.JSONField(help_text="the answer given to the engine, repeated for a re-sent item")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(qty__gt=0, bankruptcy_price__gt=0, fill_price__gt=0, adl_qty__gte=0),
                name="liquidation_positive",
            ),
            models.CheckConstraint(condition=Q(adl_qty__lte=models.F("qty")), name="liquidation_adl_within_qty"),
        ]
        indexes = [
            models.Index(fields=["instrument", "-at"], name="liquidation_symbol_idx"),
            models.Index(fields=["account", "-at"], name="liquidation_account_idx"),
        ]

    def __str__(self) -> str:
        return f"liquidation {self.liquidation_id}"


class AdlEvent(models.Model):
    """Auto-deleveraging of the quantity the insurance fund could not cover, at the bankruptcy price."""

    liquidation = models.OneToOneField(Liquidation, on_delete=models.PROTECT, related_name="adl_event")
    instrument = models.ForeignKey("trading_risk.Instrument", on_delete=models.PROTECT, related_name="adl_events")
    side = models.CharField(
        max_length=5, choices=Liquidation.Side, help_text="the side deleveraged: opposite the liquidated position"
    )
    qty = models.DecimalField(**_MONEY)
    price = models.DecimalField(**_MONEY, help_text="the liquidated order's bankruptcy price")
    mark_price = models.DecimalField(**_MONEY, null=True, blank=True, help_text="the mark the ranking used")
    fund_balance_at_trigger = models.DecimalField(**_MONEY)
    uncovered = models.DecimalField(**_MONEY, help_text="the shortfall the fund could not pay")
    unallocated_qty = models.DecimalField(
        **_MONEY, default=0, help_text="quantity no counterparty was left to take (the queue ran out)"
    )
    ranking = models.JSONField(help_text="the opposite side's ranking used: account, qty, score, quintile")
    at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(qty__gt=0, price__gt=0), name="adl_event_positive")]

    def __str__(self) -> str:
        return f"ADL {self.qty} {self.instrument_id} {self.side} at {self.price}"


class AdlAllocation(models.Model):
    """One counterparty's share of an ADL event, walked from the top of its side's queue."""

    event = models.ForeignKey(AdlEvent, on_delete=models.PROTECT, related_name="allocations")
    position = models.ForeignKey("trading_risk.Position", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="adl_allocations")
    rank = models.PositiveIntegerField()
    score = models.DecimalField(max_digits=38, decimal_places=18)
    position_qty = models.DecimalField(**_MONEY)
    qty = models.DecimalField(**_MONEY)
    entry_price = models.DecimalField(**_MONEY)
    realised_pnl = models.DecimalField(**_MONEY, help_text="closing qty at the ADL price against entry")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "rank"], name="adl_allocation_rank_unique"),
            models.CheckConstraint(
                condition=Q(qty__gt=0, qty__lte=models.F("position_qty")), name="adl_allocation_within_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.qty} of {self.account_id} in ADL {self.event_id}"


class InsuranceFundEntry(models.Model):
    """One movement of an insurance fund; append-only, each with the balance it leaves."""

    class Kind(models.TextChoices):
        LIQUIDATION_SURPLUS = "LIQUIDATION_SURPLUS", "Liquidation surplus"
        LIQUIDATION_SHORTFALL = "LIQUIDATION_SHORTFALL", "Liquidation shortfall"
        ADL = "ADL", "Shortfall drawn to the floor; the rest deleveraged"
        TOP_UP = "TOP_UP", "Manual top-up"
        WITHDRAWAL = "WITHDRAWAL", "Manual withdrawal"

    fund = models.ForeignKey(InsuranceFund, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=21, choices=Kind)
    amount = models.DecimalField(**_MONEY)
    balance_after = models.DecimalField(**_MONEY)
    liquidation = models.ForeignKey(
        Liquidation, null=True, blank=True, on_delete=models.PROTECT, related_name="fund_entries"
    )
    adl_event = models.ForeignKey(AdlEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    change_request = models.ForeignKey(
        "backoffice.ChangeRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField()
    created_at = models.DateTimeField()
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name_plural = "insurance fund entries"
        constraints = [
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="insurance_fund_entry_not_negative"),
            models.CheckConstraint(
                condition=Q(kind__in=["LIQUIDATION_SURPLUS", "TOP_UP"], amount__gt=0)
                | Q(kind__in=["LIQUIDATION_SHORTFALL", "WITHDRAWAL"], amount__lt=0)
                | Q(kind="ADL", amount__lte=0),
                name="insurance_fund_entry_sign",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["TOP_UP", "WITHDRAWAL"], change_request__isnull=False)
                | Q(~Q(kind__in=["TOP_UP", "WITHDRAWAL"]), liquidation__isnull=False),
                name="insurance_fund_entry_source",
            ),
            models.CheckConstraint(
                condition=~Q(kind="ADL") | Q(adl_event__isnull=False), name="insurance_fund_entry_adl_event"
            ),
        ]
        indexes = [models.Index(fields=["fund", "id"], name="insurance_fund_entry_fund_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.fund_id}"
