"""Position limits, hedging exemptions and broker-member limits.

The default limit per customer and product is the risk parameter `position.limit_btc` (scoped by product);
a PositionLimit row overrides it for one product, one contract month of its dated futures, or one customer
type. Rows are written only when a second person approves the change (trading_risk/position_limits.py).
"""

from django.db import models
from django.db.models import F, Q

__all__ = ["BrokerLimitReview", "BrokerMember", "HedgingExemption", "PositionLimit"]

_BTC = {"max_digits": 38, "decimal_places": 18}
CUSTOMER_TYPES = [("INDIVIDUAL", "Individual"), ("CORPORATE", "Corporate"), ("MARKET_MAKER", "Market maker")]


class PositionLimit(models.Model):
    """A position limit in BTC equivalent for a product (the base asset of its contracts).

    With `contract_month` it limits the net position in the dated futures expiring in that month; without,
    all of the product's perpetual and dated contracts combined. `customer_type` narrows it to one tier of
    customers; a row for the customer's own type wins over the row for every type.
    """

    product = models.CharField(max_length=16, help_text="base asset of the contracts, e.g. BTC or ETH")
    contract_month = models.DateField(
        null=True, blank=True, help_text="first day of the expiry month of dated futures; empty: all contracts"
    )
    customer_type = models.CharField(max_length=12, choices=CUSTOMER_TYPES, blank=True, help_text="empty: all")
    limit_btc = models.DecimalField(**_BTC)
    delivery_month_limit_btc = models.DecimalField(
        **_BTC, null=True, blank=True, help_text="stricter limit in the delivery month; empty: the limit × factor"
    )
    effective_from = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="replaced or removed then")
    created_at = models.DateTimeField()
    change_request = models.ForeignKey("backoffice.ChangeRequest", on_delete=models.PROTECT, related_name="+")

    class Meta:
        permissions = [("approve_position_limit", "Can approve position limits, hedging exemptions and member limits")]
        constraints = [
            models.CheckConstraint(condition=Q(limit_btc__gt=0), name="position_limit_positive"),
            models.CheckConstraint(
                condition=Q(delivery_month_limit_btc__isnull=True)
                | Q(delivery_month_limit_btc__gt=0, delivery_month_limit_btc__lte=F("limit_btc")),
                name="position_limit_delivery_stricter",
            ),
            models.UniqueConstraint(
                fields=["product", "contract_month", "customer_type"],
                condition=Q(ended_at__isnull=True),
                nulls_distinct=False,
                name="position_limit_one_in_force",
            ),
        ]
        indexes = [models.Index(fields=["product", "contract_month"], name="position_limit_lookup_idx")]

    def __str__(self) -> str:
        month = f" {self.contract_month:%Y-%m}" if self.contract_month else ""
        tier = f" ({self.get_customer_type_display()})" if self.customer_type else ""
        return f"{self.product}{month}{tier}: {self.limit_btc.normalize():f} BTC"


class HedgingExemption(models.Model):
    """An approved hedging position: while in force, the account's positions do not count and its orders pass."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="hedging_exemptions")
    product = models.CharField(max_length=16, blank=True, help_text="empty: every product")
    reason = models.TextField()
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    requested_by = models.CharField(max_length=150)
    approved_by = models.CharField(max_length=150)
    change_request = models.ForeignKey("backoffice.ChangeRequest", on_delete=models.PROTECT, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=150, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(expires_at__gt=F("starts_at")), name="hedging_exemption_expires_later"),
            models.CheckConstraint(condition=~Q(requested_by=F("approved_by")), name="hedging_exemption_four_eyes"),
        ]
        indexes = [
            models.Index(
                fields=["account", "expires_at"], condition=Q(revoked_at__isnull=True), name="hedging_in_force_idx"
            )
        ]

    def __str__(self) -> str:
        return f"Hedging exemption {self.account_id} {self.product or 'all products'} until {self.expires_at:%Y-%m-%d}"

    def in_force(self, now) -> bool:
        return self.revoked_at is None and self.starts_at <= now < self.expires_at


class BrokerMember(models.Model):
    """A corporate customer acting as a broker member: its position limit, set against its net capital."""

    customer = models.OneToOneField("accounts.Customer", on_delete=models.PROTECT, related_name="broker_member")
    member_number = models.CharField(max_length=32, unique=True)
    net_capital_btc = models.DecimalField(**_BTC)
    limit_btc = models.DecimalField(**_BTC)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    next_review_date = models.DateField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    change_request = models.ForeignKey("backoffice.ChangeRequest", on_delete=models.PROTECT, related_name="+")

    class Meta:
        permissions = [("review_broker_limit", "Can record broker-member limit reviews")]
        constraints = [
            models.CheckConstraint(condition=Q(limit_btc__gt=0, net_capital_btc__gte=0), name="broker_member_amounts"),
        ]

    def __str__(self) -> str:
        return f"Member {self.member_number}"


class BrokerLimitReview(models.Model):
    """One review of a broker member's limit against its net capital, as recorded."""

    member = models.ForeignKey(BrokerMember, on_delete=models.PROTECT, related_name="reviews")
    reviewed_at = models.DateTimeField()
    reviewed_by = models.CharField(max_length=150)
    net_capital_btc = models.DecimalField(**_BTC)
    limit_btc = models.DecimalField(**_BTC)
    within_capital = models.BooleanField(help_text="the limit was within net capital × the allowed multiple")
    notes = models.TextField(blank=True)
    next_review_date = models.DateField()

    class Meta:
        ordering = ["-reviewed_at"]

    def __str__(self) -> str:
        return f"Review of {self.member_id} at {self.reviewed_at:%Y-%m-%d}"
