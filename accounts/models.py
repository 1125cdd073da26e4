"""Staff users, the exchange's customers and their trading accounts."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    """A staff member. Logs in with a password and a TOTP code; see accounts.staff_auth."""

    totp_secret = models.CharField(max_length=64, blank=True)
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last accepted TOTP time step: a code is accepted once, so an observed code cannot be replayed.
    totp_last_step = models.BigIntegerField(default=0)
    failed_login_count = models.PositiveIntegerField(default=0)
    login_locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.get_username()

    @property
    def has_second_factor(self) -> bool:
        return bool(self.totp_secret and self.totp_confirmed_at)


class RecoveryCode(models.Model):
    """A one-time code a staff member can use instead of a TOTP code; stored hashed."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Recovery code #{self.pk} of {self.user_id} ({'used' if self.used_at else 'unused'})"


class Customer(models.Model):
    """The beneficial owner behind one or more trading accounts, as the exchange knows it."""

    class Type(models.TextChoices):
        INDIVIDUAL = "INDIVIDUAL", "Individual"
        CORPORATE = "CORPORATE", "Corporate"
        MARKET_MAKER = "MARKET_MAKER", "Market maker"

    class KycSource(models.TextChoices):
        NONE = "NONE", "Not verified"
        IMPORTED = "IMPORTED", "Imported from the exchange"
        DECIDED = "DECIDED", "Decided in the back office"

    external_id = models.CharField(max_length=64, unique=True, help_text="the exchange's customer_id")
    type = models.CharField(max_length=12, choices=Type)
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    email = models.EmailField(max_length=254)
    phone = models.CharField(max_length=32)
    date_of_birth = models.DateField(null=True, blank=True)
    kyc_level = models.PositiveSmallIntegerField(default=0)
    kyc_level_source = models.CharField(max_length=8, choices=KycSource, default=KycSource.NONE)
    # Set by password_change security events; withdrawals are refused for a while after it.
    password_changed_at = models.DateTimeField(null=True, blank=True)
    # Set when an account is unlocked: the customer must choose a new password before acting.
    must_change_password = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kyc_level__lte=3), name="customer_kyc_level_range"),
        ]
        indexes = [models.Index(fields=["name"], name="customer_name_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class Account(models.Model):
    """A trading account of a customer; one customer may own many."""

    class Kind(models.TextChoices):
        SPOT = "SPOT", "Spot"
        MARGIN = "MARGIN", "Margin"
        FUTURES = "FUTURES", "Futures"

    external_id = models.CharField(max_length=64, unique=True, help_text="the exchange's account_id")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="accounts")
    kind = models.CharField(max_length=8, choices=Kind)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.external_id} ({self.get_kind_display()}, {self.customer.external_id})"


class CustomerLock(models.Model):
    """A customer locked out: no login, no operation, until unlocked through verification and approval."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="locks")
    reason = models.TextField()
    rule = models.CharField(max_length=60, help_text="what locked it: a rule code or 'staff'")
    locked_at = models.DateTimeField()
    locked_by = models.CharField(max_length=150)
    # Verifications completed for the unlock: {"sms": iso time, "email": …, "face": …} with who recorded them.
    verifications = models.JSONField(default=dict, blank=True)
    unlock_request = models.ForeignKey(
        "backoffice.ChangeRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    unlocked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("unlock_customer", "Can request and approve customer unlocks")]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(unlocked_at__isnull=True), name="customer_one_open_lock"
            ),
        ]

    def __str__(self) -> str:
        state = "unlocked" if self.unlocked_at else "locked"
        return f"Lock #{self.pk} of {self.customer_id} ({state})"

    @property
    def is_open(self) -> bool:
        return self.unlocked_at is None


class Restriction(models.Model):
    """A limit on what a customer's accounts may do, with its reason code; it ends when lifted or at `until`.

    `account` empty means every account of the customer; `symbol` empty means every symbol.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="restrictions")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="restrictions")
    symbol = models.CharField(max_length=32, blank=True)
    code = models.CharField(max_length=40, help_text="reason code of the API contract")
    rule = models.CharField(max_length=60, help_text="what imposed it: a rule code, 'staff', 'emergency' …")
    reason = models.TextField(blank=True)
    starts_at = models.DateTimeField()
    until = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    source = models.CharField(max_length=100, blank=True, help_text="the object that caused it, e.g. lock:12")
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)
    lift_reason = models.TextField(blank=True)
    expiry_recorded = models.BooleanField(default=False, help_text="its end at `until` is in the change feed")

    class Meta:
        permissions = [("manage_restriction", "Can add and lift restrictions")]
        constraints = [
            models.CheckConstraint(
                condition=Q(until__isnull=True) | Q(until__gt=models.F("starts_at")),
                name="restriction_until_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["customer"], condition=Q(lifted_at__isnull=True), name="restriction_active_idx"),
            models.Index(
                fields=["until"],
                condition=Q(lifted_at__isnull=True, expiry_recorded=False),
                name="restriction_expiry_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} on {self.account_id or 'customer ' + str(self.customer_id)} ({self.rule})"

    def in_force(self, now) -> bool:
        return self.lifted_at is None and self.starts_at <= now and (self.until is None or now < self.until)


class RestrictionChange(models.Model):
    """One entry of the restriction feed the engine polls: the cursor is the id, in commit order."""

    class Change(models.TextChoices):
        ADDED = "ADDED", "Added"
        LIFTED = "LIFTED", "Lifted"
        EXPIRED = "EXPIRED", "Expired"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    restriction = models.ForeignKey(Restriction, on_delete=models.PROTECT, related_name="changes")
    change = models.CharField(max_length=8, choices=Change)
    at = models.DateTimeField()
    state = models.JSONField(help_text="the account's restrictions answer after this change")

    def __str__(self) -> str:
        return f"#{self.pk} {self.change} {self.restriction.code} on {self.account_id}"


class SecurityEvent(models.Model):
    """A login, failed login, password change, new device, registration attempt or account check."""

    class Type(models.TextChoices):
        LOGIN = "login"
        LOGIN_FAILED = "login_failed"
        PASSWORD_CHANGE = "password_change"
        DEVICE_ADDED = "device_added"
        REGISTRATION_ATTEMPT = "registration_attempt"
        ACCOUNT_CHECK = "account_check"

    event_id = models.CharField(max_length=64, unique=True)
    # Looked up by (customer, at): security_event_customer_idx serves it, a second index would only slow the write.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="security_events", db_index=False
    )
    type = models.CharField(max_length=24, choices=Type)
    ip = models.GenericIPAddressField()
    device_id = models.CharField(max_length=128)
    cookie_id = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField()
    received_at = models.DateTimeField()
    actions = models.JSONField(default=list)
    retry_after = models.PositiveIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, help_text="hash of the item as sent, for idempotency")

    class Meta:
        indexes = [models.Index(fields=["customer", "-at"], name="security_event_customer_idx")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class KnownIp(models.Model):
    """An IP a customer has logged in from, and when."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="known_ips", db_index=False)
    ip = models.GenericIPAddressField()
    country = models.CharField(max_length=2, blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    logins = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "ip"], name="known_ip_unique")]

    def __str__(self) -> str:
        return f"{self.ip} of {self.customer_id}"


class KnownDevice(models.Model):
    """A device a customer has used."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="known_devices", db_index=False)
    device_id = models.CharField(max_length=128)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "device_id"], name="known_device_unique")]

    def __str__(self) -> str:
        return f"{self.device_id} of {self.customer_id}"


class IpCountryRange(models.Model):
    """IP ranges by country (loaded from a geolocation CSV); addresses as integers so v4 and v6 both fit."""

    first = models.DecimalField(max_digits=39, decimal_places=0, db_index=True)
    last = models.DecimalField(max_digits=39, decimal_places=0)
    country = models.CharField(max_length=2)

    def __str__(self) -> str:
        return f"{self.first}–{self.last} {self.country}"


class SuspiciousEntry(models.Model):
    """An IP or device risk staff flagged; limited ones need extra verification, banned ones are refused."""

    class Kind(models.TextChoices):
        IP = "IP", "IP address"
        DEVICE = "DEVICE", "Device"

    class Status(models.TextChoices):
        FLAGGED = "FLAGGED", "Flagged (watch)"
        LIMITED = "LIMITED", "Limited (verify every use)"
        BANNED = "BANNED", "Banned (refused)"

    kind = models.CharField(max_length=6, choices=Kind)
    value = models.CharField(max_length=128)
    status = models.CharField(max_length=8, choices=Status)
    reason = models.TextField()
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    expires_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "suspicious IPs and devices"
        permissions = [("manage_suspicious", "Can flag, limit and ban IPs and devices")]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "value"], condition=Q(removed_at__isnull=True), name="suspicious_one_active_entry"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value} ({self.get_status_display()})"


class NotificationTemplate(models.Model):
    """A message customers receive; staff edit the wording in the admin ({{ name }} placeholders)."""

    class Channel(models.TextChoices):
        SMS = "SMS", "SMS"
        EMAIL = "EMAIL", "E-mail"
        CALL = "CALL", "Phone call"

    code = models.CharField(max_length=60)
    channel = models.CharField(max_length=5, choices=Channel)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code", "channel"], name="notification_template_unique")]

    def __str__(self) -> str:
        return f"{self.code} ({self.channel})"


class Notification(models.Model):
    """Every message sent to a customer, and its delivery; the local channels deliver into this outbox."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED", "Queued"
        SENT = "SENT", "Sent"
        FAILED = "FAILED", "Failed"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notifications")
    channel = models.CharField(max_length=5, choices=NotificationTemplate.Channel)
    template_code = models.CharField(max_length=60)
    recipient = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    related = models.CharField(max_length=100, blank=True, help_text="what it is about, e.g. lock:12")
    status = models.CharField(max_length=6, choices=Status, default=Status.QUEUED)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_ref = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["customer", "-created_at"], name="notification_customer_idx")]

    def __str__(self) -> str:
        return f"{self.channel} {self.template_code} to {self.recipient} ({self.status})"
