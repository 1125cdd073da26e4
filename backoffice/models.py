"""Cross-cutting records: the operations log, risk parameters, maker-checker requests and API clients."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class OperationsLogEntry(models.Model):
    """One state change, by staff, an API client or the system. Append-only and hash-chained."""

    class ActorType(models.TextChoices):
        STAFF = "STAFF", "Staff"
        API = "API", "API client"
        SYSTEM = "SYSTEM", "System"

    at = models.DateTimeField(db_index=True)
    actor_type = models.CharField(max_length=8, choices=ActorType)
    # No database FK: rows must survive (unchanged) whatever happens to the user they name.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor = models.CharField(max_length=150, db_index=True, help_text="username, API client name or task")
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=80, db_index=True)
    target_id = models.CharField(max_length=100, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = "operations log entry"
        verbose_name_plural = "operations log"
        indexes = [models.Index(fields=["target_type", "target_id", "at"], name="oplog_target_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_type}:{self.target_id}"


class ParameterDefinition(models.Model):
    """What a risk parameter means and what values it may take; its values live in ParameterValue."""

    class Kind(models.TextChoices):
        DECIMAL = "DECIMAL", "Decimal"
        INTEGER = "INTEGER", "Whole number"
        DURATION = "DURATION", "Duration (seconds)"
        BOOLEAN = "BOOLEAN", "Yes / no"
        CHOICE = "CHOICE", "One of a list"

    key = models.CharField(max_length=100, primary_key=True)
    section = models.CharField(max_length=60)
    description = models.TextField()
    kind = models.CharField(max_length=10, choices=Kind)
    unit = models.CharField(max_length=20, blank=True)
    min_value = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    max_value = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True)
    choices = models.JSONField(default=list, blank=True)
    scoped = models.BooleanField(default=False, help_text="may be overridden per symbol or asset")

    def __str__(self) -> str:
        return self.key


class ParameterValue(models.Model):
    """One version of a parameter's value, in force from effective_from until the next version."""

    definition = models.ForeignKey(ParameterDefinition, on_delete=models.PROTECT, related_name="values")
    scope = models.CharField(max_length=40, blank=True, default="", help_text="blank = everywhere")
    value = models.CharField(max_length=100)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField()
    change_request = models.ForeignKey(
        "ChangeRequest", null=True, blank=True, on_delete=models.PROTECT, related_name="parameter_values"
    )

    class Meta:
        permissions = [("approve_parameter_change", "Can approve risk parameter changes")]
        constraints = [
            models.UniqueConstraint(
                fields=["definition", "scope", "effective_from"], name="parameter_value_unique_version"
            ),
        ]
        indexes = [models.Index(fields=["definition", "scope", "-effective_from"], name="parameter_lookup_idx")]

    def __str__(self) -> str:
        scope = f"[{self.scope}]" if self.scope else ""
        return f"{self.definition_id}{scope} = {self.value} from {self.effective_from:%Y-%m-%d %H:%M}"


class ChangeRequest(models.Model):
    """A change one person asks for; it takes effect only when other people approve it (maker-checker)."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending approval"
        APPLIED = "APPLIED", "Approved and applied"
        REJECTED = "REJECTED", "Rejected"
        EXPIRED = "EXPIRED", "Expired"
        CANCELLED = "CANCELLED", "Cancelled"

    action = models.CharField(max_length=80, db_index=True)
    payload = models.JSONField()
    summary = models.CharField(max_length=300)
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    required_approvals = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        permissions = [("request_change", "Can request changes that need a second person's approval")]
        constraints = [
            models.CheckConstraint(condition=Q(required_approvals__gte=1), name="change_request_needs_approver"),
            models.CheckConstraint(condition=Q(expires_at__gt=F("requested_at")), name="change_request_expiry"),
            # Target of the composite foreign key from ChangeApproval (see migration 0002).
            models.UniqueConstraint(fields=["id", "requested_by"], name="change_request_id_requester"),
        ]

    def __str__(self) -> str:
        return f"Change #{self.pk} {self.action} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.PENDING


class ChangeApproval(models.Model):
    """One approver's decision on a change request. The requester can never be the approver."""

    class Decision(models.TextChoices):
        APPROVE = "APPROVE", "Approve"
        REJECT = "REJECT", "Reject"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="approvals")
    # Copied from the request so the database itself can refuse self-approval; a composite foreign key
    # (change_request_id, requested_by_id) → change request (id, requested_by_id) keeps the copy honest.
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision)
    reason = models.TextField(blank=True)
    decided_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(approver=F("requested_by")), name="change_approval_four_eyes"),
            models.UniqueConstraint(fields=["change_request", "approver"], name="change_approval_once_per_person"),
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} of change #{self.change_request_id} by {self.approver}"


class ApiClient(models.Model):
    """A machine client of /api/v1/ (the matching engine). Only a hash of its token is stored."""

    name = models.CharField(max_length=100, unique=True)
    token_prefix = models.CharField(max_length=12, help_text="first characters of the token, to recognise it")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API client"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    # DRF and Django treat request.user as a user; an API client is authenticated but never staff.
    is_authenticated = True
    is_staff = False
    is_superuser = False
