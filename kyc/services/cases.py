"""KYC cases: opening, the dossier (data, checks, documents), assignment and the two-stage review.

Lock order: customer row, then the case row. A decision signs the dossier as it stood: who, when, what
and the SHA-256 of the dossier, under an HMAC with the project's secret key, and is archived append-only.
"""

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from pathlib import PurePath

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from accounts.models import Customer
from backoffice import audit, parameters
from backoffice.assignment import assign_work
from backoffice.errors import DomainError, InvalidInput
from kyc import documents, selectors
from kyc.models import Decision, Document, KycCase, Requirement

SLA_PARAMETER = "kyc.review_sla_hours"


class CaseAlreadyOpen(DomainError):
    """The customer already has an open KYC case."""

    code = "kyc_case_open"


class WrongStage(DomainError):
    """The case is not at the stage this needs."""

    code = "kyc_wrong_stage"


class SameReviewer(DomainError):
    """The second reviewer cannot be the person who did the first review."""

    code = "self_approval"


class NotAllowed(DomainError):
    """You may not do this."""

    code = "permission_denied"
    status = 403


class DossierIncomplete(DomainError):
    """The dossier lacks what the level needs."""

    code = "kyc_dossier_incomplete"


class DocumentRefused(InvalidInput):
    """The file cannot go into a dossier."""


@transaction.atomic
def open_case(
    *, customer: Customer, requested_level: int, actor: audit.Actor, now: datetime, data: dict | None = None
) -> KycCase:
    """Open a KYC case for the customer at the level applied for; screening runs when it commits."""
    from kyc import tasks

    if requested_level not in (1, 2, 3):
        raise InvalidInput("The level must be 1, 2 or 3.", details=[{"field": "requested_level", "message": "range"}])
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    case = KycCase(
        customer=customer,
        track=selectors.track_of(customer),
        requested_level=requested_level,
        data=data or {},
        opened_at=now,
        due_at=_due(now),
    )
    try:
        with transaction.atomic():
            case.save(force_insert=True)
    except IntegrityError:
        raise CaseAlreadyOpen() from None
    audit.record(
        actor=actor,
        action="kyc.case.open",
        target=case,
        now=now,
        after={"customer": customer.external_id, "level": requested_level, "track": case.track},
    )
    tasks.screen_customer.delay_on_commit(customer_id=customer.pk)
    return case


def _due(now: datetime) -> datetime:
    return now + timedelta(hours=parameters.param(SLA_PARAMETER, at=now))


@transaction.atomic
def update_dossier(*, case: KycCase, data: dict, actor: audit.Actor, now: datetime) -> KycCase:
    """Set dossier fields (e.g. authorised_person, contact_details, registry_link); blank values remove them."""
    case = _lock_for_material(case)
    before = dict(case.data)
    for name, value in data.items():
        if value in (None, ""):
            case.data.pop(name, None)
        else:
            case.data[name] = str(value).strip()
    case.save(update_fields=["data"])
    audit.record(actor=actor, action="kyc.case.data", target=case, now=now, before=before, after=case.data)
    _reopen_if_sent_back(case, actor=actor, now=now)
    return case


@transaction.atomic
def record_check(*, case: KycCase, check: str, note: str, actor: audit.Actor, now: datetime) -> KycCase:
    """Record a passed verification check (authenticator, anti-phishing code, face match …)."""
    if not Requirement.objects.filter(track=case.track, code=check, kind=Requirement.Kind.CHECK).exists():
        raise InvalidInput(
            f"{check!r} is not a check of this track.", details=[{"field": "check", "message": "unknown"}]
        )
    case = _lock_for_material(case)
    case.checks[check] = {"at": now.isoformat(), "by": actor.label, "note": note}
    case.save(update_fields=["checks"])
    audit.record(actor=actor, action="kyc.case.check", target=case, now=now, after={"check": check, "note": note})
    _reopen_if_sent_back(case, actor=actor, now=now)
    return case


def add_document(
    *, case: KycCase, document_type: str, upload, named_person: str, actor: audit.Actor, now: datetime
) -> Document:
    """Store an uploaded file in the dossier after sniffing its content; refuses executables and over-size files."""
    if not Requirement.objects.filter(track=case.track, code=document_type, kind=Requirement.Kind.DOCUMENT).exists():
        raise DocumentRefused(
            f"{document_type!r} is not a document type of this track.",
            details=[{"field": "document_type", "message": "unknown"}],
        )
    content_type, digest = _inspect(upload, max_bytes=parameters.param("kyc.document_max_bytes", at=now))
    # The file is written before the transaction (slow I/O outside it) and removed again if the row is not.
    stored = default_storage.save(f"kyc/{case.pk}/{digest}{PurePath(upload.name).suffix.lower()}", upload)
    try:
        return _record_document(
            case=case,
            document_type=document_type,
            stored=stored,
            upload=upload,
            content_type=content_type,
            digest=digest,
            named_person=named_person,
            actor=actor,
            now=now,
        )
    except Exception:
        default_storage.delete(stored)
        raise


def _inspect(upload, *, max_bytes: int) -> tuple[str, str]:
    upload.seek(0)
    head = upload.read(documents.SNIFF_BYTES)
    try:
        content_type = documents.sniff(name=upload.name, head=head, size=upload.size, max_bytes=max_bytes)
    except documents.Refused as exc:
        raise DocumentRefused(f"{upload.name}: {exc}.", details=[{"field": "file", "message": str(exc)}]) from None
    upload.seek(0)
    digest = documents.sha256_of(upload.chunks())
    upload.seek(0)
    return content_type, digest


@transaction.atomic
def _record_document(*, case, document_type, stored, upload, content_type, digest, named_person, actor, now):
    case = _lock_for_material(case)
    document = Document.objects.create(
        case=case,
        document_type=document_type,
        file=stored,
        original_name=upload.name[:255],
        content_type=content_type,
        size=upload.size,
        sha256=digest,
        named_person=named_person.strip(),
        uploaded_by=actor.user,
        uploaded_at=now,
    )
    audit.record(
        actor=actor,
        action="kyc.document.add",
        target=document,
        now=now,
        after={
            "case": case.pk,
            "type": document_type,
            "content_type": content_type,
            "size": upload.size,
            "sha256": digest,
            "named_person": document.named_person,
        },
    )
    _reopen_if_sent_back(case, actor=actor, now=now)
    return document


def _lock_for_material(case: KycCase) -> KycCase:
    Customer.objects.select_for_update(no_key=True).get(pk=case.customer_id)
    case = KycCase.objects.select_for_update(no_key=True).select_related("customer").get(pk=case.pk)
    if case.status not in (KycCase.Status.OPEN, KycCase.Status.SENT_BACK):
        raise WrongStage("New material goes into cases awaiting first review or sent back to the customer.")
    return case


def _reopen_if_sent_back(case: KycCase, *, actor: audit.Actor, now: datetime) -> None:
    # New material from the customer puts the case back in the first-review queue with a fresh SLA.
    if case.status != KycCase.Status.SENT_BACK:
        return
    case.status, case.due_at = KycCase.Status.OPEN, _due(now)
    case.save(update_fields=["status", "due_at"])
    audit.record(
        actor=actor,
        action="kyc.case.reopen",
        target=case,
        now=now,
        before={"status": KycCase.Status.SENT_BACK},
        after={"status": case.status, "due_at": case.due_at},
    )


def assign_case(*, case: KycCase, assignee, actor: audit.Actor, now: datetime, reason: str = "") -> None:
    """Give the case to one person (object permission kyc.work_case)."""
    assign_work(obj=case, assignee=assignee, permission="kyc.work_case", actor=actor, now=now, reason=reason)


# ---- review --------------------------------------------------------------------------------------------
@transaction.atomic
def decide_case(*, case: KycCase, outcome: str, reason: str, actor: audit.Actor, now: datetime) -> Decision:
    """Decide the case's current review stage: approve, reject, or send back to the customer. Signed and archived."""
    if not reason.strip():
        raise InvalidInput("Give a reason for the decision.", details=[{"field": "reason", "message": "required"}])
    if outcome not in Decision.Outcome.values:
        raise InvalidInput("Unknown outcome.", details=[{"field": "outcome", "message": "unknown"}])
    customer = Customer.objects.select_for_update(no_key=True).get(pk=case.customer_id)
    case = KycCase.objects.select_for_update(no_key=True).select_related("customer").get(pk=case.pk)
    stage = _stage_of(case)
    _check_reviewer(case, stage, actor)
    if outcome == Decision.Outcome.APPROVE:
        _require_complete(case)
    decision = _sign(case, stage=stage, outcome=outcome, reason=reason.strip(), actor=actor, now=now)
    before = {"status": case.status}
    _apply_outcome(case, customer, stage=stage, outcome=outcome, actor=actor, now=now)
    audit.record(
        actor=actor,
        action="kyc.case.decide",
        target=case,
        now=now,
        reason=reason,
        before=before,
        after={
            "stage": stage,
            "outcome": outcome,
            "status": case.status,
            "decision": decision.pk,
            "dossier_hash": decision.dossier_hash,
        },
    )
    return decision


def _stage_of(case: KycCase) -> str:
    if case.status == KycCase.Status.OPEN:
        return Decision.Stage.FIRST
    if case.status == KycCase.Status.SECOND_REVIEW:
        return Decision.Stage.SECOND
    raise WrongStage(f"The case is {case.get_status_display().lower()}; there is nothing to decide.")


def _check_reviewer(case: KycCase, stage: str, actor: audit.Actor) -> None:
    user = actor.user
    permission = "kyc.first_review" if stage == Decision.Stage.FIRST else "kyc.second_review"
    if user is None or not user.has_perm(permission):
        raise NotAllowed(f"You need the permission {permission!r} for this review.")
    if stage == Decision.Stage.SECOND and case.first_reviewer_id == user.pk:
        raise SameReviewer()
    assignees = selectors.case_assignees(case)
    if assignees and user.pk not in assignees:
        raise NotAllowed("The case is assigned to someone else.")


def _require_complete(case: KycCase) -> None:
    found = selectors.case_checklist(case)
    if not found.complete:
        missing = [item.need.label for item in found.missing] + list(found.problems)
        raise DossierIncomplete(
            "Cannot approve: " + "; ".join(missing) + ".", details=[{"field": "dossier", "message": m} for m in missing]
        )


def _apply_outcome(case: KycCase, customer: Customer, *, stage: str, outcome: str, actor, now) -> None:
    if stage == Decision.Stage.SECOND:
        case.second_reviewer = actor.user
    if outcome == Decision.Outcome.SEND_BACK:
        case.status, case.first_reviewer, case.first_reviewed_at, case.second_reviewer = (
            KycCase.Status.SENT_BACK,
            None,
            None,
            None,
        )
    elif outcome == Decision.Outcome.REJECT:
        case.status, case.closed_at = KycCase.Status.REJECTED, now
    elif stage == Decision.Stage.FIRST and selectors.needs_second_review(case):
        case.status, case.first_reviewer, case.first_reviewed_at = KycCase.Status.SECOND_REVIEW, actor.user, now
        case.due_at = _due(now)
    else:
        if stage == Decision.Stage.FIRST:
            case.first_reviewer, case.first_reviewed_at = actor.user, now
        case.status, case.closed_at = KycCase.Status.APPROVED, now
        _set_level(customer, case.requested_level, case=case, actor=actor, now=now)
    case.save()


def _set_level(customer: Customer, level: int, *, case: KycCase, actor, now) -> None:
    before = audit.snapshot(customer, ("kyc_level", "kyc_level_source"))
    Customer.objects.filter(pk=customer.pk).update(
        kyc_level=level, kyc_level_source=Customer.KycSource.DECIDED, updated_at=now
    )
    audit.record(
        actor=actor,
        action="customer.kyc_level",
        target=customer,
        now=now,
        before=before,
        after={"kyc_level": level, "kyc_level_source": Customer.KycSource.DECIDED},
        reason=f"KYC case #{case.pk} approved",
    )


def _sign(case: KycCase, *, stage, outcome, reason, actor, now) -> Decision:
    snapshot = selectors.dossier_snapshot(case)
    decision = Decision(
        case=case,
        stage=stage,
        outcome=outcome,
        reason=reason,
        decided_by=actor.user,
        decided_at=now,
        dossier=snapshot,
        dossier_hash=selectors.dossier_hash(snapshot),
    )
    decision.signature = signature(decision)
    decision.save(force_insert=True)
    return decision


def signature(decision: Decision) -> str:
    """HMAC-SHA256 over who decided what, when, on which dossier hash."""
    content = {
        "case": decision.case_id,
        "stage": decision.stage,
        "outcome": decision.outcome,
        "reason": decision.reason,
        "decided_by": decision.decided_by.get_username(),
        "decided_at": decision.decided_at.isoformat(),
        "dossier_hash": decision.dossier_hash,
    }
    message = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def signature_holds(decision: Decision) -> bool:
    """Whether the archived decision and its dossier are as signed."""
    return (
        hmac.compare_digest(signature(decision), decision.signature)
        and selectors.dossier_hash(decision.dossier) == decision.dossier_hash
    )
