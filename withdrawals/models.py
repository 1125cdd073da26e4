"""Withdrawals and their approvals, the asset/network registry, payouts, and the exchange's wallets."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

AMOUNT = {"max_digits": 38, "decimal_places": 18}


class AssetNetwork(models.Model):
    """An asset as it moves on one network (USDT on ETH, USDT on TRX …): precision, suspensions, fee."""

    asset = models.CharField(max_length=16)
    network = models.CharField(max_length=16, help_text="the chain's native asset code")
    decimals = models.PositiveSmallIntegerField(help_text="the smallest unit the chain can move")
    withdrawals_suspended = models.BooleanField(default=False)
    deposits_suspended = models.BooleanField(default=False)
    suspension_reason = models.TextField(blank=True)
    network_fee = models.DecimalField(**AMOUNT, default=0, help_text="fee charged per withdrawal, in the asset")

    class Meta:
        verbose_name = "asset on a network"
        permissions = [("approve_withdrawal_control", "Can approve withdrawal controls, suspensions and fees")]
        constraints = [
            models.UniqueConstraint(fields=["asset", "network"], name="asset_network_unique"),
            models.CheckConstraint(condition=Q(decimals__lte=18), name="asset_network_decimals"),
            models.CheckConstraint(condition=Q(network_fee__gte=0), name="asset_network_fee_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.asset} on {self.network}"


class ManualConfirmation(models.Model):
    """While one of these is in force, no withdrawal is approved automatically (an incident switch)."""

    reason = models.TextField()
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    change_request = models.ForeignKey("backoffice.ChangeRequest", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ended_at"], condition=Q(ended_at__isnull=True), name="one_manual_switch"),
        ]

    def __str__(self) -> str:
        return f"Manual confirmation since {self.started_at:%Y-%m-%d %H:%M}"


class Withdrawal(models.Model):
    """One withdrawal request from the engine, the decision on it, and what staff and payout did since."""

    class Status(models.TextChoices):
        APPROVED = "APPROVED", "Approved"
        PENDING_REVIEW = "PENDING_REVIEW", "Pending review"
        HELD = "HELD", "Held"
        REJECTED = "REJECTED", "Rejected"
        FROZEN = "FROZEN", "Frozen"
        SENT = "SENT", "Paid out"

    request_id = models.CharField(max_length=64, unique=True)
    fingerprint = models.CharField(max_length=64, help_text="hash of the request as sent, for idempotency")
    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="withdrawals")
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="withdrawals")
    asset_network = models.ForeignKey(AssetNetwork, on_delete=models.PROTECT, related_name="withdrawals")
    amount = models.DecimalField(**AMOUNT)
    address = models.CharField(max_length=128)
    requested_at = models.DateTimeField()
    received_at = models.DateTimeField()
    value_btc = models.DecimalField(**AMOUNT)
    value_usd = models.DecimalField(**AMOUNT)
    status = models.CharField(max_length=14, choices=Status)
    reasons = models.JSONField(default=list, help_text="the contract's reason codes")
    rules = models.JSONField(default=list, help_text="every rule that fired, with its numbers")
    screening = models.JSONField(default=dict, help_text="the destination address screening result")
    travel_rule = models.JSONField(null=True, blank=True, help_text="IVMS101 originator/beneficiary data")
    hold_until = models.DateTimeField(null=True, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=0)
    # Staff who changed the request (identity confirmation, travel-rule data) may not approve it.
    last_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    identity_confirmed_via = models.CharField(max_length=5, blank=True, help_text="PHONE or FACE")
    identity_confirmed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decision_reason = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("review_withdrawal", "Can approve and reject withdrawals in the review queue")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_positive"),
            models.CheckConstraint(condition=Q(required_approvals__lte=2), name="withdrawal_approvals_tier"),
            models.CheckConstraint(
                condition=Q(sent_at__isnull=True) | Q(status="SENT"), name="withdrawal_sent_only_when_sent"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-requested_at"], name="withdrawal_customer_idx"),
            models.Index(fields=["hold_until"], condition=Q(status="HELD"), name="withdrawal_hold_idx"),
            models.Index(fields=["status"], condition=Q(status="APPROVED"), name="withdrawal_to_pay_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}: {self.amount.normalize():f} {self.asset_network.asset} ({self.status})"

    def api_status(self, now=None) -> str:
        """The contract's status at `now`: a paid-out withdrawal is still "approved" (`paid_out_at` says more),
        and a hold past its hold_until already reads as review, even before the periodic task moves it."""
        if self.status == self.Status.SENT:
            return "approved"
        if now is not None and self.hold_ended(now):
            return "pending_review"
        return self.status.lower()

    def hold_ended(self, now) -> bool:
        return (
            self.status == self.Status.HELD
            and self.hold_until is not None
            and self.hold_until <= now
            and not self.asset_network.withdrawals_suspended
        )


class WithdrawalApproval(models.Model):
    """One person's approval of a withdrawal; nobody approves twice or approves what they changed."""

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Copied from the withdrawal under its row lock, so the database itself refuses an approval by them.
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    approved_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["withdrawal", "approver"], name="withdrawal_approval_once_per_person"),
            models.CheckConstraint(
                condition=Q(changed_by__isnull=True) | ~Q(approver=F("changed_by")),
                name="withdrawal_approval_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"Approval of {self.withdrawal_id} by {self.approver_id}"


class Payout(models.Model):
    """The instruction to the custodian: one per withdrawal, keyed by an idempotency key from its pk."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        SUBMITTED = "SUBMITTED", "Submitted"

    withdrawal = models.OneToOneField(Withdrawal, on_delete=models.PROTECT, related_name="payout")
    idempotency_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=9, choices=Status, default=Status.QUEUED)
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    custodian_ref = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"Payout {self.idempotency_key} ({self.status})"


# ---- wallets -------------------------------------------------------------------------------------------
class Wallet(models.Model):
    """One of the exchange's own wallets: withdrawals leave from hot wallets, deposits rest in cold ones."""

    class Tier(models.TextChoices):
        HOT = "HOT", "Hot"
        WARM = "WARM", "Warm"
        COLD = "COLD", "Cold"

    name = models.CharField(max_length=64, unique=True)
    asset_network = models.ForeignKey(AssetNetwork, on_delete=models.PROTECT, related_name="wallets")
    tier = models.CharField(max_length=4, choices=Tier)
    address = models.CharField(max_length=128)
    target_balance = models.DecimalField(**AMOUNT)
    max_balance = models.DecimalField(**AMOUNT)
    active = models.BooleanField(default=True)

    class Meta:
        permissions = [
            ("manage_wallet", "Can register and change wallets, sign off flow reviews and record wallet checks")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(target_balance__gte=0) & Q(max_balance__gte=F("target_balance")), name="wallet_bounds"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_tier_display()} {self.asset_network})"


class WalletBalance(models.Model):
    """A wallet's balance at a moment, as the custody system reported it, with the band then in force."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="balances")
    balance = models.DecimalField(**AMOUNT)
    at = models.DateTimeField()
    # The wallet's target and maximum when the balance was recorded, so the history reads against its own band.
    target_balance = models.DecimalField(**AMOUNT, null=True, blank=True)
    max_balance = models.DecimalField(**AMOUNT, null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wallet", "at"], name="wallet_balance_once_per_time")]

    def __str__(self) -> str:
        return f"{self.wallet_id} {self.balance} at {self.at:%Y-%m-%d %H:%M}"


class WalletFlow(models.Model):
    """Funds moving into or out of a wallet on chain; outflows name the withdrawal they pay, if any."""

    class Direction(models.TextChoices):
        IN = "IN", "In"
        OUT = "OUT", "Out"

    flow_id = models.CharField(max_length=64, unique=True)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="flows")
    direction = models.CharField(max_length=3, choices=Direction)
    amount = models.DecimalField(**AMOUNT)
    tx_hash = models.CharField(max_length=128, blank=True)
    request_id = models.CharField(max_length=64, blank=True, help_text="the withdrawal this outflow pays")
    at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="wallet_flow_amount_positive")]
        indexes = [models.Index(fields=["wallet", "at"], name="wallet_flow_time_idx")]

    def __str__(self) -> str:
        return f"{self.direction} {self.amount} {self.wallet_id} ({self.flow_id})"


class WalletAlert(models.Model):
    """A hot wallet outside its band; one per wallet, kind and day."""

    class Kind(models.TextChoices):
        BELOW_TARGET = "BELOW_TARGET", "Below target"
        ABOVE_MAX = "ABOVE_MAX", "Above maximum"

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="alerts")
    kind = models.CharField(max_length=12, choices=Kind)
    balance = models.DecimalField(**AMOUNT)
    dedup_key = models.CharField(max_length=120, unique=True)
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.wallet} {self.get_kind_display()}"


class FlowReview(models.Model):
    """The daily hot-wallet flow review: the day's flows against the withdrawals paid, signed off by a person."""

    day = models.DateField(unique=True)
    built_at = models.DateTimeField()
    withdrawals_paid = models.PositiveIntegerField()
    flows_out = models.PositiveIntegerField()
    # {"missing": [paid, no outflow], "late": [outflow too late], "unexpected": [flow ids], "unpaid": [approved]}
    findings = models.JSONField(default=dict)
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_off_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Hot-wallet flow review {self.day}"

    @property
    def is_clean(self) -> bool:
        return not any(self.findings.get(k) for k in ("missing", "unexpected", "late", "unpaid"))


class ColdWalletCheck(models.Model):
    """A recorded check of a cold wallet: what was observed against what the books expect."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="checks")
    checked_at = models.DateTimeField()
    checked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    observed_balance = models.DecimalField(**AMOUNT)
    expected_balance = models.DecimalField(**AMOUNT)
    note = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Check of {self.wallet} at {self.checked_at:%Y-%m-%d %H:%M}"

    @property
    def matches(self) -> bool:
        return self.observed_balance == self.expected_balance


# ---- travel-rule reference data --------------------------------------------------------------------------
class RegistrationAuthority(models.Model):
    """One entry of the GLEIF Registration Authorities List, as loaded from the operator's CSV download."""

    code = models.CharField(max_length=8, unique=True, help_text="RA and six digits, e.g. RA000585")
    country_code = models.CharField(max_length=2, blank=True)
    jurisdiction = models.CharField(max_length=200, blank=True)
    register_name = models.CharField(max_length=500, blank=True, help_text="international name of the register")
    organisation = models.CharField(max_length=500, blank=True, help_text="organisation responsible for it")
    website = models.CharField(max_length=500, blank=True)
    end_date = models.CharField(max_length=32, blank=True, help_text="as the list gives it, for retired registers")
    source = models.CharField(max_length=200, help_text="the file it was loaded from")
    loaded_at = models.DateTimeField()

    class Meta:
        verbose_name = "GLEIF registration authority"
        constraints = [
            models.CheckConstraint(condition=Q(code__regex=r"^RA[0-9]{6}$"), name="registration_authority_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.register_name or self.organisation}"
