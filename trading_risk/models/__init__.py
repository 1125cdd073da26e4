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
    account = models.ForeignKey(
        "accounts.Account", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
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
    case = models.ForeignKey("Case", null=True, blank=True, on_delete=models.PROTECT, related_name="alerts")

    class Meta:
        permissions = [("work_alert", "Can be assigned and close alerts")]
        indexes = [models.Index(fields=["status", "-opened_at"], name="alert_queue_idx")]

    def __str__(self) -> str:
        return f"Alert #{self.pk} {self.rule} ({self.get_status_display()})"


# ---- events from the matching engine ------------------------------------------------------------------
# Trades and order events live in tables partitioned by range on their time (created in migration 0004 with
# RunSQL; see trading_risk/partitions.py). A unique constraint on a partitioned table must include the
# partition key, so natural-ID idempotency is enforced by the small *Key tables below instead.


class Trade(models.Model):
    """One execution between a buying and a selling account (partitioned by executed_at)."""

    pk = models.CompositePrimaryKey("executed_at", "trade_id")
    trade_id = models.CharField(max_length=64)
    symbol = models.CharField(max_length=32)
    price = models.DecimalField(max_digits=38, decimal_places=18)
    qty = models.DecimalField(max_digits=38, decimal_places=18)
    buy_account = models.ForeignKey(
        "accounts.Account", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    sell_account = models.ForeignKey(
        "accounts.Account", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    # The accounts' owners, copied at ingest so wash-trading detection needs no join over millions of rows.
    buy_customer_id = models.BigIntegerField()
    sell_customer_id = models.BigIntegerField()
    buy_order_id = models.CharField(max_length=64)
    sell_order_id = models.CharField(max_length=64)
    aggressor = models.CharField(max_length=4)
    executed_at = models.DateTimeField()
    # qty valued at the base asset's reference price at executed_at; NULL when no price was known then.
    value_btc = models.DecimalField(max_digits=38, decimal_places=18, null=True)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"trade {self.trade_id}"


class TradeKey(models.Model):
    """The idempotency record of a trade: its natural ID, where it is stored and a digest of its payload."""

    # "C" collation: byte-wise comparison keeps the unique index cheap on the hot path.
    trade_id = models.CharField(max_length=64, primary_key=True, db_collation="C")
    executed_at = models.DateTimeField()
    # hash_record_extended of the payload: equal values hash equal (1.5 and 1.50, one instant in two offsets).
    digest = models.BigIntegerField()
    # A BRIN index on executed_at (migration 0004) finds a day's keys for retention at almost no ingest cost.

    def __str__(self) -> str:
        return self.trade_id


class OrderEvent(models.Model):
    """An order placed or cancelled (partitioned by at)."""

    pk = models.CompositePrimaryKey("at", "event_id")
    event_id = models.CharField(max_length=64)
    order_id = models.CharField(max_length=64)
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    symbol = models.CharField(max_length=32)
    type = models.CharField(max_length=9)
    side = models.CharField(max_length=4)
    price = models.DecimalField(max_digits=38, decimal_places=18)
    qty = models.DecimalField(max_digits=38, decimal_places=18)
    at = models.DateTimeField()
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"order event {self.event_id}"


class OrderEventKey(models.Model):
    """The idempotency record of an order event."""

    event_id = models.CharField(max_length=64, primary_key=True, db_collation="C")
    at = models.DateTimeField()
    # hash_record_extended of the payload: equal values hash equal (1.5 and 1.50, one instant in two offsets).
    digest = models.BigIntegerField()

    def __str__(self) -> str:
        return self.event_id


# ---- surveillance state ------------------------------------------------------------------------------------
class OrderCancelLadder(models.Model):
    """Where an account stands on the frequent order/cancel ladder for one symbol.

    One row per (account, symbol), locked while a hit is evaluated, so one crossing climbs one step only.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    symbol = models.CharField(max_length=32)
    step = models.PositiveSmallIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="order_cancel_ladder_unique"),
            models.CheckConstraint(condition=Q(step__lte=3), name="order_cancel_ladder_step_range"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.symbol} step {self.step}"


class AccountDailyActivity(models.Model):
    """One account's activity on one UTC day: the baseline the behaviour-anomaly rule compares against."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    volume_btc = models.DecimalField(max_digits=38, decimal_places=18, default=0)
    trades = models.PositiveIntegerField(default=0)
    order_events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "day"], name="account_daily_activity_unique")]
        indexes = [models.Index(fields=["day"], name="account_daily_activity_day_idx")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day}"


class DetectorRun(models.Model):
    """One detector over one window; a finished run is never repeated, an unfinished one is resumed."""

    detector = models.CharField(max_length=60)
    window_end = models.DateTimeField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    findings = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["detector", "window_end"], name="detector_run_unique")]

    def __str__(self) -> str:
        return f"{self.detector} to {self.window_end:%Y-%m-%d %H:%M}"


class LinkedGroup(models.Model):
    """Customers treated as one beneficial owner for wash trading (shared device, IP, KYC data …)."""

    class Basis(models.TextChoices):
        DEVICE = "DEVICE", "Shared device"
        IP = "IP", "Shared IP"
        KYC = "KYC", "Shared KYC data"
        MANUAL = "MANUAL", "Set by staff"

    name = models.CharField(max_length=120)
    basis = models.CharField(max_length=6, choices=Basis)
    evidence = models.CharField(max_length=200, blank=True, help_text="the shared device, IP or document")
    customers = models.ManyToManyField("accounts.Customer", related_name="linked_groups", blank=True)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["basis", "evidence"], condition=~Q(evidence=""), name="linked_group_one_per_evidence"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RuleSnooze(models.Model):
    """A rule silenced for one account until a time, with the reason."""

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="+")
    rule = models.CharField(max_length=60)
    until = models.DateTimeField()
    reason = models.TextField()
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "rule", "until"], name="rule_snooze_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.rule} snoozed for {self.account_id} until {self.until:%Y-%m-%d %H:%M}"


# ---- cases -------------------------------------------------------------------------------------------------
class Case(models.Model):
    """Related alerts of one customer, worked together to a disposition."""

    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        CLOSED = "CLOSED", "Closed"

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="surveillance_cases")
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=6, choices=Status, default=Status.OPEN)
    opened_at = models.DateTimeField()
    opened_by = models.CharField(max_length=150)
    disposition = models.CharField(max_length=16, choices=Alert.Disposition, blank=True)
    closing_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=150, blank=True)

    class Meta:
        permissions = [("work_case", "Can be assigned and close cases")]
        indexes = [models.Index(fields=["status", "-opened_at"], name="case_queue_idx")]

    def __str__(self) -> str:
        return f"Case #{self.pk} {self.title}"


class CaseNote(models.Model):
    """A note on a case, optionally with an attached file."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notes")
    author = models.CharField(max_length=150)
    text = models.TextField()
    attachment = models.FileField(upload_to="cases/%Y/%m/", blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Note on case {self.case_id} by {self.author}"


class CustomerCall(models.Model):
    """A phone call with the customer about a case (the risk call the rulebook requires)."""

    class Outcome(models.TextChoices):
        REACHED = "REACHED", "Reached, warned"
        NO_ANSWER = "NO_ANSWER", "No answer"
        REFUSED = "REFUSED", "Refused to talk"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="calls")
    called_at = models.DateTimeField()
    called_by = models.CharField(max_length=150)
    phone = models.CharField(max_length=32)
    outcome = models.CharField(max_length=9, choices=Outcome)
    summary = models.TextField()

    def __str__(self) -> str:
        return f"Call on case {self.case_id} at {self.called_at:%Y-%m-%d %H:%M}"


class WarningLetter(models.Model):
    """A risk-warning letter generated from the template for the case's customer, kept as issued."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="letters")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    issued_at = models.DateTimeField()
    issued_by = models.CharField(max_length=150)

    def __str__(self) -> str:
        return f"Letter on case {self.case_id} ({self.issued_at:%Y-%m-%d})"


# ---- emergency controls -------------------------------------------------------------------------------------
class TradingHalt(models.Model):
    """A symbol (or, with symbol empty, all trading) halted or set to close-only, from approval until resumed."""

    class Mode(models.TextChoices):
        HALT = "HALT", "Halted"
        CLOSE_ONLY = "CLOSE_ONLY", "Close-only (reduce-only)"

    symbol = models.CharField(max_length=32, blank=True, help_text="empty: every symbol")
    mode = models.CharField(max_length=10, choices=Mode)
    reason = models.TextField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    change_request = models.ForeignKey("backoffice.ChangeRequest", on_delete=models.PROTECT, related_name="+")

    class Meta:
        permissions = [("approve_emergency", "Can approve emergency controls and announcements")]
        constraints = [
            models.UniqueConstraint(
                fields=["symbol"], condition=Q(ended_at__isnull=True), name="trading_halt_one_active_per_symbol"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_mode_display()} {self.symbol or 'all symbols'}"


class AnnouncementTemplate(models.Model):
    """Wording of a public announcement (domain.md §8); staff edit it in the admin."""

    code = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField()

    def __str__(self) -> str:
        return self.code


class Announcement(models.Model):
    """An announcement drafted from a template; external disclosure needs a risk officer's approval."""

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        PUBLISHED = "PUBLISHED", "Published"

    template_code = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=9, choices=Status, default=Status.DRAFT)
    related = models.CharField(max_length=100, blank=True, help_text="what it is about, e.g. halt:3")
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.title} ({self.get_status_display()})"


# ---- position and margin risk ----------------------------------------------------------------------
from trading_risk.models.limits import *  # noqa: E402,F403
from trading_risk.models.liquidation import *  # noqa: E402,F403
from trading_risk.models.margin import *  # noqa: E402,F403
