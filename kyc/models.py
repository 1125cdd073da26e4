"""KYC requirements (the constructor), cases with their documents and signed decisions, sanctions lists,
sanctioned addresses and screening hits."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Track(models.TextChoices):
    INDIVIDUAL = "INDIVIDUAL", "Individual"
    CORPORATE = "CORPORATE", "Corporate and market maker"


class Requirement(models.Model):
    """One thing a KYC level needs, configured in the admin. A level needs its own rows and every lower level's."""

    class Kind(models.TextChoices):
        DOCUMENT = "DOCUMENT", "Document"
        FIELD = "FIELD", "Data field"
        CHECK = "CHECK", "Verification check"

    track = models.CharField(max_length=10, choices=Track)
    level = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=60, help_text="document type, data field name or check name")
    kind = models.CharField(max_length=8, choices=Kind)
    label = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["track", "level", "kind", "code"]
        permissions = [("approve_requirement_change", "Can approve changes to KYC requirements")]
        constraints = [
            models.UniqueConstraint(fields=["track", "code"], name="kyc_requirement_unique_code"),
            models.CheckConstraint(condition=Q(level__gte=1, level__lte=3), name="kyc_requirement_level_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_track_display()} L{self.level}: {self.label}"


class KycCase(models.Model):
    """A customer's application for a KYC level: the dossier (data, checks, documents) and its review."""

    class Status(models.TextChoices):
        OPEN = "OPEN", "Awaiting first review"
        SECOND_REVIEW = "SECOND_REVIEW", "Awaiting second review"
        SENT_BACK = "SENT_BACK", "Sent back to the customer"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="kyc_cases")
    track = models.CharField(max_length=10, choices=Track)
    requested_level = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=14, choices=Status, default=Status.OPEN, db_index=True)
    data = models.JSONField(default=dict, blank=True, help_text="dossier fields, e.g. authorised_person")
    checks = models.JSONField(default=dict, blank=True, help_text="passed checks: {name: {at, by, note}}")
    opened_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="SLA: the current stage should be decided by then")
    first_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    first_reviewed_at = models.DateTimeField(null=True, blank=True)
    second_reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "KYC case"
        permissions = [
            ("first_review", "Can decide the first review of KYC cases"),
            ("second_review", "Can decide the second (compliance) review of KYC cases"),
            ("work_case", "Is assigned to this KYC case"),
            ("manage_dossier", "Can open cases, upload documents and record checks"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(first_reviewer__isnull=True)
                | Q(second_reviewer__isnull=True)
                | ~Q(first_reviewer=F("second_reviewer")),
                name="kyc_case_four_eyes",
            ),
            models.CheckConstraint(
                condition=Q(requested_level__gte=1, requested_level__lte=3), name="kyc_case_level_range"
            ),
            models.UniqueConstraint(
                fields=["customer"], condition=Q(closed_at__isnull=True), name="kyc_case_one_open_per_customer"
            ),
        ]
        indexes = [models.Index(fields=["due_at"], condition=Q(closed_at__isnull=True), name="kyc_case_queue_idx")]

    def __str__(self) -> str:
        return f"KYC case #{self.pk} ({self.customer_id}, level {self.requested_level})"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class Document(models.Model):
    """A file in a dossier: its type sniffed from the content, its size, SHA-256 and uploader."""

    case = models.ForeignKey(KycCase, on_delete=models.PROTECT, related_name="documents")
    document_type = models.CharField(max_length=60)
    file = models.FileField(upload_to="kyc/%Y/%m/")
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    named_person = models.CharField(
        max_length=200, blank=True, help_text="the person the document names, e.g. the authorised person"
    )
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.document_type} {self.original_name}"


class Decision(models.Model):
    """A signed review decision, archived: append-only in the database."""

    class Stage(models.TextChoices):
        FIRST = "FIRST", "First review"
        SECOND = "SECOND", "Second review"

    class Outcome(models.TextChoices):
        APPROVE = "APPROVE", "Approve"
        REJECT = "REJECT", "Reject"
        SEND_BACK = "SEND_BACK", "Send back for more material"

    case = models.ForeignKey(KycCase, on_delete=models.PROTECT, related_name="decisions")
    stage = models.CharField(max_length=6, choices=Stage)
    outcome = models.CharField(max_length=9, choices=Outcome)
    reason = models.TextField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()
    dossier_hash = models.CharField(max_length=64, help_text="SHA-256 of the dossier as it stood")
    dossier = models.JSONField(help_text="the dossier as it stood, as hashed")
    signature = models.CharField(max_length=64, help_text="HMAC-SHA256 of who, when, what and the dossier hash")

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="kyc_decision_reason_required")]

    def __str__(self) -> str:
        return f"{self.get_stage_display()} {self.outcome} of case {self.case_id}"


class SanctionsList(models.Model):
    """One loaded version of a list; a new version is recorded whenever the loaded content changes."""

    source = models.CharField(max_length=40, help_text="OFAC_SDN, OFAC_CONSOLIDATED, ADDRESSES …")
    version = models.CharField(max_length=64, help_text="SHA-256 of the files as loaded")
    files = models.JSONField(default=list)
    loaded_at = models.DateTimeField()
    loaded_by = models.CharField(max_length=150)
    entries = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)

    class Meta:
        permissions = [("load_list", "Can load sanctions lists")]

    def __str__(self) -> str:
        return f"{self.source} {self.version[:12]} ({self.loaded_at:%Y-%m-%d})"


class ListEntry(models.Model):
    """A listed person, entity, vessel or aircraft; stays across versions while its list keeps it."""

    source = models.CharField(max_length=40)
    ent_num = models.CharField(max_length=20)
    kind = models.CharField(max_length=10)
    name = models.CharField(max_length=350)
    aliases = models.JSONField(default=list)
    programs = models.JSONField(default=list)
    birth_dates = models.JSONField(default=list)
    countries = models.JSONField(default=list)
    remarks = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, help_text="changes when anything screening uses changes")
    changed_in = models.ForeignKey(SanctionsList, on_delete=models.PROTECT, related_name="+")
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "list entries"
        constraints = [models.UniqueConstraint(fields=["source", "ent_num"], name="kyc_list_entry_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.source} {self.ent_num})"


class SanctionedAddress(models.Model):
    """A crypto address on a sanctions list or added by staff as high risk (e.g. a reported scam wallet)."""

    class Origin(models.TextChoices):
        LIST = "LIST", "Sanctions list"
        STAFF = "STAFF", "Added by staff"

    chain = models.CharField(max_length=10, help_text="address space: EVM, BTC, TRX …")
    address = models.CharField(max_length=128, help_text="normalised for its chain")
    network = models.CharField(max_length=20, help_text="ticker or network as listed")
    origin = models.CharField(max_length=5, choices=Origin)
    source = models.CharField(max_length=40, help_text="the list source, or 'staff'")
    entry = models.ForeignKey(ListEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="addresses")
    reason = models.TextField(blank=True)
    added_by = models.CharField(max_length=150)
    added_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "sanctioned and high-risk addresses"
        permissions = [("manage_high_risk_address", "Can add and remove high-risk addresses")]
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "address", "source"],
                condition=Q(removed_at__isnull=True),
                name="kyc_address_one_active",
            ),
        ]
        indexes = [models.Index(fields=["chain", "address"], name="kyc_address_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.chain} {self.address} ({self.source})"


class ScreeningHit(models.Model):
    """A customer whose data scored at or above the review threshold against a list entry."""

    class Status(models.TextChoices):
        OPEN = "OPEN", "Open"
        TRUE_MATCH = "TRUE_MATCH", "True match"
        FALSE_MATCH = "FALSE_MATCH", "False match"
        CLEARED = "CLEARED", "No longer matches"

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="screening_hits")
    entry = models.ForeignKey(ListEntry, on_delete=models.PROTECT, related_name="hits")
    score = models.DecimalField(max_digits=5, decimal_places=1)
    name_score = models.DecimalField(max_digits=5, decimal_places=1)
    matched_name = models.CharField(max_length=350)
    screened_name = models.CharField(max_length=200)
    reasons = models.JSONField(default=list)
    customer_fingerprint = models.CharField(max_length=64)
    entry_fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=11, choices=Status, default=Status.OPEN, db_index=True)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        permissions = [("decide_screening_hit", "Can mark screening hits true or false matches")]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "entry"], condition=Q(status="OPEN"), name="kyc_hit_one_open_per_pair"
            ),
        ]
        indexes = [models.Index(fields=["customer", "entry", "status"], name="kyc_hit_pair_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} ~ {self.matched_name} ({self.score})"
