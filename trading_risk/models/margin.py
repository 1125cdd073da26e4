"""Risk-limit tables, positions, balances and each account's margin state."""

from decimal import Decimal

from django.db import models
from django.db.models import Q

__all__ = [
    "AccountMargin",
    "Balance",
    "MarginTransition",
    "Position",
    "RiskLimitBracket",
    "RiskLimitTable",
    "SnapshotKey",
]

_MONEY = {"max_digits": 38, "decimal_places": 18}


class RiskLimitTable(models.Model):
    """One version of an instrument's risk limits: a step table (BitMEX) or brackets with maintenance amounts.

    Sizes and notionals are in the instrument's settlement currency (quote for linear, base coin for inverse).
    A new version takes effect from `effective_from`; versions are never edited, only superseded.
    """

    class Model(models.TextChoices):
        STEP = "STEP", "Step (base limit + step)"
        BRACKET = "BRACKET", "Brackets with maintenance amount"

    class Settlement(models.TextChoices):
        LINEAR = "LINEAR", "Linear (quote-margined)"
        INVERSE = "INVERSE", "Inverse (coin-margined)"

    instrument = models.ForeignKey("trading_risk.Instrument", on_delete=models.PROTECT, related_name="risk_limits")
    version = models.PositiveIntegerField()
    model = models.CharField(max_length=8, choices=Model)
    settlement = models.CharField(max_length=8, choices=Settlement, default=Settlement.LINEAR)
    contract_size = models.DecimalField(**_MONEY, default=1, help_text="quote value of one contract (inverse)")
    base_limit = models.DecimalField(**_MONEY, null=True, blank=True)
    step = models.DecimalField(**_MONEY, null=True, blank=True)
    base_maintenance_rate = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    base_initial_rate = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    step_increment = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField()
    change_request = models.ForeignKey(
        "backoffice.ChangeRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "version"], name="risk_limit_version_unique"),
            models.CheckConstraint(
                condition=~Q(model="STEP")
                | Q(
                    base_limit__gt=0,
                    step__gt=0,
                    base_maintenance_rate__gt=0,
                    base_initial_rate__gt=0,
                    step_increment__gte=0,
                ),
                name="risk_limit_step_complete",
            ),
            models.CheckConstraint(condition=Q(contract_size__gt=0), name="risk_limit_contract_size_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} risk limits v{self.version}"


class RiskLimitBracket(models.Model):
    table = models.ForeignKey(RiskLimitTable, on_delete=models.CASCADE, related_name="brackets")
    floor = models.DecimalField(**_MONEY)
    cap = models.DecimalField(**_MONEY)
    maintenance_rate = models.DecimalField(max_digits=12, decimal_places=8)
    initial_rate = models.DecimalField(max_digits=12, decimal_places=8)
    maintenance_amount = models.DecimalField(**_MONEY, default=0)

    class Meta:
        ordering = ["table", "floor"]
        constraints = [
            models.UniqueConstraint(fields=["table", "floor"], name="risk_limit_bracket_unique"),
            models.CheckConstraint(condition=Q(cap__gt=models.F("floor")), name="risk_limit_bracket_cap_above_floor"),
            models.CheckConstraint(
                condition=Q(maintenance_rate__gt=0, initial_rate__gte=models.F("maintenance_rate")),
                name="risk_limit_bracket_rates",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.floor}–{self.cap}: {self.maintenance_rate} / {self.initial_rate}"


class Position(models.Model):
    """The latest snapshot of an account's position in one instrument (the engine sends snapshots).

    The maintenance/initial rates of the risk-limit tier and the liquidation and bankruptcy prices depend
    only on the snapshot, not on the mark, so they are computed when it arrives; the liquidation queue is then
    an index range over `liquidation_price`.
    """

    class Side(models.TextChoices):
        LONG = "LONG", "Long"
        SHORT = "SHORT", "Short"

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="positions")
    instrument = models.ForeignKey("trading_risk.Instrument", on_delete=models.PROTECT, related_name="positions")
    side = models.CharField(max_length=5, choices=Side)
    qty = models.DecimalField(**_MONEY)
    entry_price = models.DecimalField(**_MONEY)
    margin = models.DecimalField(**_MONEY)
    at = models.DateTimeField()
    received_at = models.DateTimeField()
    risk_limit = models.ForeignKey(RiskLimitTable, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    maintenance_rate = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    initial_rate = models.DecimalField(max_digits=12, decimal_places=8, null=True, blank=True)
    maintenance_amount = models.DecimalField(**_MONEY, default=0)
    liquidation_price = models.DecimalField(**_MONEY, null=True, blank=True)
    bankruptcy_price = models.DecimalField(**_MONEY, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="position_unique"),
            models.CheckConstraint(condition=Q(qty__gte=0, entry_price__gte=0, margin__gte=0), name="position_nonneg"),
        ]
        indexes = [
            models.Index(fields=["instrument", "side", "liquidation_price"], name="position_liquidation_idx"),
            # The re-margin worker keeps positions in memory and re-reads only those received since its last look.
            models.Index(fields=["received_at"], name="position_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.side} {self.qty} {self.instrument_id}"


class Balance(models.Model):
    """The latest snapshot of an account's balance in one asset."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="balances")
    asset = models.CharField(max_length=16)
    total = models.DecimalField(**_MONEY)
    available = models.DecimalField(**_MONEY)
    at = models.DateTimeField()
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "asset"], name="balance_unique"),
            models.CheckConstraint(
                condition=Q(available__lte=models.F("total"), available__gte=0), name="balance_available_within_total"
            ),
        ]
        indexes = [models.Index(fields=["received_at"], name="balance_received_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.total} {self.asset}"


class AccountMargin(models.Model):
    """An account's margin picture in one book (perpetual or dated contracts, monitored separately), in USD,
    with its classification. The figures are those of the last classification change (`classified_at`);
    the margin detail recomputes them at the current mark."""

    class Classification(models.TextChoices):
        HEALTHY = "HEALTHY", "Healthy"
        WARNING = "WARNING", "Warning"
        BELOW_MAINTENANCE = "BELOW_MAINTENANCE", "Below maintenance"
        LIQUIDATION = "LIQUIDATION", "Liquidation"

    class Book(models.TextChoices):
        PERPETUAL = "PERPETUAL", "Perpetual contracts"
        FUTURE = "FUTURE", "Dated futures"

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="margin_states")
    book = models.CharField(max_length=9, choices=Book, default=Book.PERPETUAL)
    equity = models.DecimalField(**_MONEY)
    maintenance_margin = models.DecimalField(**_MONEY)
    initial_margin = models.DecimalField(**_MONEY)
    warning_line = models.DecimalField(**_MONEY, default=0)
    notional = models.DecimalField(**_MONEY)
    classification = models.CharField(max_length=17, choices=Classification, db_index=True)
    computed_at = models.DateTimeField()
    classified_at = models.DateTimeField(help_text="when the classification last changed")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "book"], name="account_margin_book_unique")]
        # Re-margin workers re-read the rows another process changed since their last look.
        indexes = [models.Index(fields=["computed_at"], name="account_margin_computed_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.book}: {self.get_classification_display()}"

    @property
    def margin_ratio(self) -> Decimal | None:
        """Equity over maintenance margin (≤ 1 is below maintenance); None without positions."""
        return self.equity / self.maintenance_margin if self.maintenance_margin > 0 else None


class SnapshotKey(models.Model):
    """The idempotency record of one position or balance snapshot: (account, symbol or asset, at) and a
    digest of its payload, so a re-sent snapshot is a duplicate and a changed one a conflict."""

    class Kind(models.TextChoices):
        POSITION = "P", "Position"
        BALANCE = "B", "Balance"

    kind = models.CharField(max_length=1, choices=Kind)
    account_id = models.BigIntegerField()
    subject = models.CharField(max_length=32, db_collation="C")
    at = models.DateTimeField()
    digest = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "account_id", "subject", "at"], name="snapshot_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.account_id} {self.subject} {self.at}"


class MarginTransition(models.Model):
    """A change of an account's margin class in one book, kept with the figures that caused it until its
    consequences (notice, restriction, alert) are done: written with the classification, acted on after."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    book = models.CharField(max_length=9, choices=AccountMargin.Book)
    from_classification = models.CharField(max_length=17, choices=AccountMargin.Classification, blank=True)
    to_classification = models.CharField(max_length=17, choices=AccountMargin.Classification)
    equity = models.DecimalField(**_MONEY)
    maintenance_margin = models.DecimalField(**_MONEY)
    initial_margin = models.DecimalField(**_MONEY)
    warning_line = models.DecimalField(**_MONEY)
    at = models.DateTimeField()
    consequences_done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["at"], condition=Q(consequences_done_at__isnull=True), name="margin_transition_pending_idx"
            ),
            models.Index(fields=["account", "-at"], name="margin_transition_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.book}: {self.from_classification or '—'} → {self.to_classification}"
