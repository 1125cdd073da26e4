"""Locking and unlocking customers.

Locking is immediate: a lock, an `account_locked` restriction on every account, a notice to the customer.
Unlocking is a staff workflow: the verifications done are recorded (SMS, e-mail, and face from the
configured KYC level up), a person requests the unlock, a different person approves it
(maker-checker `customer.unlock`), and the customer must then change their password.
"""

from datetime import datetime

from django.db import transaction

from accounts import notifications, restrictions
from accounts.models import Customer, CustomerLock
from backoffice import approvals, audit, parameters
from backoffice.errors import DomainError, InvalidInput, NotFound

VERIFICATIONS = ("sms", "email", "face")


class NotLocked(DomainError):
    """The customer is not locked."""

    code = "not_locked"


class VerificationsMissing(DomainError):
    """The unlock needs verifications that have not been recorded."""

    code = "verifications_missing"


class UnlockPending(DomainError):
    """An unlock of this lock is already waiting for approval."""

    code = "unlock_pending"


@transaction.atomic
def lock_customer(*, customer: Customer, rule: str, reason: str, actor: audit.Actor, now: datetime) -> CustomerLock:
    """Lock the customer out of everything now; an existing open lock is returned unchanged."""
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    existing = CustomerLock.objects.filter(customer=customer, unlocked_at__isnull=True).first()
    if existing is not None:
        return existing
    lock = CustomerLock.objects.create(
        customer=customer, rule=rule, reason=reason, locked_at=now, locked_by=actor.label
    )
    audit.record(
        actor=actor,
        action="customer.lock",
        target=customer,
        now=now,
        reason=reason,
        before={"locked": False},
        after={"locked": True, "lock": lock.pk, "rule": rule},
    )
    restrictions.add_restriction(
        customer=customer,
        code="account_locked",
        rule=rule,
        reason=reason,
        actor=actor,
        now=now,
        source=f"lock:{lock.pk}",
    )
    notifications.notify_customer(
        customer=customer,
        template_code="account_locked",
        channels_=("SMS", "EMAIL"),
        now=now,
        context={"reason": reason},
        related=f"lock:{lock.pk}",
    )
    return lock


def required_verifications(customer: Customer, *, now: datetime) -> tuple[str, ...]:
    """SMS and e-mail always; face too from the configured KYC level up."""
    face_from = parameters.param("security.unlock_face_min_kyc_level", at=now)
    return VERIFICATIONS if customer.kyc_level >= face_from else ("sms", "email")


@transaction.atomic
def record_unlock_verification(
    *, lock: CustomerLock, kind: str, actor: audit.Actor, now: datetime, note: str = ""
) -> CustomerLock:
    """Note that the customer passed one verification (sms, email or face) for this unlock."""
    if kind not in VERIFICATIONS:
        raise InvalidInput(f"Choose one of {', '.join(VERIFICATIONS)}.", details=[{"field": "kind", "message": kind}])
    lock = _lock_open(lock.pk)
    lock.verifications = {**lock.verifications, kind: {"at": now.isoformat(), "by": actor.label, "note": note}}
    lock.save(update_fields=["verifications"])
    audit.record(
        actor=actor,
        action="customer.unlock_verification",
        target=lock.customer,
        now=now,
        reason=note,
        after={"lock": lock.pk, "verification": kind},
    )
    return lock


@transaction.atomic
def request_unlock(*, lock: CustomerLock, actor: audit.Actor, reason: str, now: datetime):
    """Ask for the unlock; it happens when a different person approves it."""
    lock = _lock_open(lock.pk)
    if lock.unlock_request_id and lock.unlock_request.is_open:
        raise UnlockPending()
    missing = [v for v in required_verifications(lock.customer, now=now) if v not in lock.verifications]
    if missing:
        raise VerificationsMissing(f"Record these verifications first: {', '.join(missing)}.")
    change = approvals.request_change(
        action="customer.unlock", payload={"lock_id": lock.pk}, actor=actor, reason=reason, now=now
    )
    lock.unlock_request = change
    lock.save(update_fields=["unlock_request"])
    return change


def _apply_unlock(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    lock = _lock_open(payload["lock_id"])
    customer = Customer.objects.select_for_update(no_key=True).get(pk=lock.customer_id)
    lock.unlocked_at = now
    lock.save(update_fields=["unlocked_at"])
    customer.must_change_password = True
    customer.save(update_fields=["must_change_password"])
    audit.record(
        actor=actor,
        action="customer.unlock",
        target=customer,
        now=now,
        reason=change_request.reason,
        before={"locked": True, "lock": lock.pk},
        after={"locked": False, "must_change_password": True, "verifications": sorted(lock.verifications)},
    )
    restrictions.lift_restrictions_from(
        source=f"lock:{lock.pk}",
        customer=customer,
        actor=actor,
        reason=f"unlocked (change #{change_request.pk})",
        now=now,
    )
    notifications.notify_customer(
        customer=customer,
        template_code="account_unlocked",
        channels_=("SMS", "EMAIL"),
        now=now,
        related=f"lock:{lock.pk}",
    )
    return {"lock_id": lock.pk}


def _validate_unlock(payload: dict) -> dict:
    if not CustomerLock.objects.filter(pk=payload.get("lock_id"), unlocked_at__isnull=True).exists():
        raise NotLocked()
    return {"lock_id": payload["lock_id"]}


def _lock_open(pk: int) -> CustomerLock:
    try:
        lock = CustomerLock.objects.select_for_update(no_key=True).select_related("customer").get(pk=pk)
    except CustomerLock.DoesNotExist:
        raise NotFound("No such lock.") from None
    if not lock.is_open:
        raise NotLocked("This lock has been lifted already.")
    return lock


def change_action() -> approvals.ChangeAction:
    return approvals.ChangeAction(
        code="customer.unlock",
        label="Unlock a customer",
        request_permission="accounts.unlock_customer",
        approve_permission="accounts.unlock_customer",
        validate=_validate_unlock,
        apply=_apply_unlock,
        describe=lambda p: f"Unlock (lock #{p['lock_id']})",
    )
