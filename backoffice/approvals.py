"""Maker-checker: a change one person requests takes effect only when different people approve it.

Each kind of change registers a `ChangeAction`: how to validate its payload, who may request and
approve it, how many approvers it needs (tiers read from risk parameters) and how to apply it. The
requester can never approve their own request: refused here, and by a database constraint.

Lock order: the change request row first, then whatever `apply` locks.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from backoffice import audit, parameters
from backoffice.errors import DomainError, InvalidInput, NotFound
from backoffice.models import ChangeApproval, ChangeRequest


class UnknownAction(InvalidInput):
    """No such kind of change."""


class NotAllowed(DomainError):
    """You may not do this."""

    code = "permission_denied"
    status = 403


class SelfApproval(DomainError):
    """The person who requested a change cannot approve it."""

    code = "self_approval"


class AlreadyDecided(DomainError):
    """This request is no longer pending."""

    code = "not_pending"


class AlreadyApproved(DomainError):
    """You have already approved this request."""

    code = "already_approved"


class Expired(DomainError):
    """This request has expired; ask for the change again."""

    code = "expired"


@dataclass(frozen=True)
class ChangeAction:
    code: str
    label: str
    request_permission: str
    approve_permission: str
    validate: Callable[[dict], dict]
    apply: Callable[..., dict | None]
    describe: Callable[[dict], str]
    approvals_needed: Callable[[dict], int] = field(default=lambda payload: 1)


_ACTIONS: dict[str, ChangeAction] = {}


def register(action: ChangeAction) -> ChangeAction:
    _ACTIONS[action.code] = action
    return action


def registered_actions() -> dict[str, ChangeAction]:
    return dict(_ACTIONS)


def get_action(code: str) -> ChangeAction:
    try:
        return _ACTIONS[code]
    except KeyError:
        raise UnknownAction(f"There is no change action called {code!r}.") from None


@transaction.atomic
def request_change(*, action: str, payload: dict, actor: audit.Actor, reason: str, now: datetime) -> ChangeRequest:
    """Open a change request; nothing changes until enough other people approve it."""
    change_action = get_action(action)
    _require(actor, change_action.request_permission)
    if not reason.strip():
        raise InvalidInput("Give a reason for the change.", details=[{"field": "reason", "message": "required"}])
    clean = change_action.validate(payload)
    change = ChangeRequest.objects.create(
        action=action,
        payload=audit.jsonable(clean),
        summary=change_action.describe(clean)[:300],
        reason=reason,
        requested_by=actor.user,
        requested_at=now,
        expires_at=now + timedelta(hours=parameters.param("maker_checker.request_expiry_hours", at=now)),
        required_approvals=max(1, change_action.approvals_needed(clean)),
    )
    audit.record(
        actor=actor,
        action="change_request.open",
        target=change,
        now=now,
        after={"action": action, "payload": change.payload, "required_approvals": change.required_approvals},
        reason=reason,
    )
    return change


@transaction.atomic
def approve_change(*, change_request: ChangeRequest, actor: audit.Actor, reason: str, now: datetime) -> ChangeRequest:
    """Record one approval; the change is applied, in this transaction, once enough people approved."""
    change = _lock_pending(change_request.pk, now=now)
    change_action = get_action(change.action)
    _require(actor, change_action.approve_permission)
    if actor.user.pk == change.requested_by_id:
        raise SelfApproval()
    if change.approvals.filter(approver=actor.user).exists():
        raise AlreadyApproved()
    _save_decision(change, actor, ChangeApproval.Decision.APPROVE, reason, now)
    audit.record(actor=actor, action="change_request.approve", target=change, now=now, reason=reason)
    if change.approvals.filter(decision=ChangeApproval.Decision.APPROVE).count() >= change.required_approvals:
        result = change_action.apply(payload=change.payload, change_request=change, actor=actor, now=now)
        _close(change, ChangeRequest.Status.APPLIED, now, result=audit.jsonable(result))
        audit.record(
            actor=actor,
            action="change_request.apply",
            target=change,
            now=now,
            before={"status": ChangeRequest.Status.PENDING},
            after={"status": change.status, "result": change.result},
        )
    return change


@transaction.atomic
def reject_change(*, change_request: ChangeRequest, actor: audit.Actor, reason: str, now: datetime) -> ChangeRequest:
    """Turn a request down; one rejection by an approver closes it."""
    change = _lock_pending(change_request.pk, now=now)
    _require(actor, get_action(change.action).approve_permission)
    if actor.user.pk == change.requested_by_id:
        raise SelfApproval("Withdraw your own request with 'cancel' instead.")
    if not reason.strip():
        raise InvalidInput("Give a reason for the rejection.", details=[{"field": "reason", "message": "required"}])
    _save_decision(change, actor, ChangeApproval.Decision.REJECT, reason, now)
    _close(change, ChangeRequest.Status.REJECTED, now)
    audit.record(
        actor=actor,
        action="change_request.reject",
        target=change,
        now=now,
        before={"status": ChangeRequest.Status.PENDING},
        after={"status": change.status},
        reason=reason,
    )
    return change


@transaction.atomic
def cancel_change(*, change_request: ChangeRequest, actor: audit.Actor, now: datetime) -> ChangeRequest:
    """The requester withdraws a pending request."""
    change = _lock_pending(change_request.pk, now=now)
    if actor.user is None or actor.user.pk != change.requested_by_id:
        raise NotAllowed("Only the person who requested a change can cancel it.")
    _close(change, ChangeRequest.Status.CANCELLED, now)
    audit.record(
        actor=actor,
        action="change_request.cancel",
        target=change,
        now=now,
        before={"status": ChangeRequest.Status.PENDING},
        after={"status": change.status},
    )
    return change


def expire_change_requests(*, now: datetime) -> int:
    """Close every pending request past its expiry; returns how many were closed."""
    expired_ids = list(
        ChangeRequest.objects.filter(status=ChangeRequest.Status.PENDING, expires_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    return sum(_expire_one(pk, now=now) for pk in expired_ids)


@transaction.atomic
def _expire_one(pk: int, *, now: datetime) -> int:
    # Compare-and-set: an approval racing with expiry wins or loses cleanly on the status.
    updated = ChangeRequest.objects.filter(pk=pk, status=ChangeRequest.Status.PENDING, expires_at__lte=now).update(
        status=ChangeRequest.Status.EXPIRED, decided_at=now
    )
    if updated:
        audit.record(
            actor=audit.Actor.system("expire_change_requests"),
            action="change_request.expire",
            target=("backoffice.changerequest", pk),
            now=now,
            before={"status": ChangeRequest.Status.PENDING},
            after={"status": ChangeRequest.Status.EXPIRED},
        )
    return updated


def _lock_pending(pk: int, *, now: datetime) -> ChangeRequest:
    try:
        change = ChangeRequest.objects.select_for_update(no_key=True).get(pk=pk)
    except ChangeRequest.DoesNotExist:
        raise NotFound("No such change request.") from None
    if change.status != ChangeRequest.Status.PENDING:
        raise AlreadyDecided(f"This request is {change.get_status_display().lower()}.")
    if change.expires_at <= now:
        raise Expired()
    return change


def _save_decision(change, actor, decision, reason, now) -> None:
    try:
        with transaction.atomic():
            ChangeApproval.objects.create(
                change_request=change,
                requested_by_id=change.requested_by_id,
                approver=actor.user,
                decision=decision,
                reason=reason,
                decided_at=now,
            )
    except IntegrityError as exc:  # the database's four-eyes and once-per-person constraints
        raise SelfApproval("The database refused this approval (four-eyes rule).") from exc


def _close(change: ChangeRequest, status: str, now: datetime, *, result=None) -> None:
    change.status = status
    change.decided_at = now
    change.result = result
    change.save(update_fields=["status", "decided_at", "result"])


def _require(actor: audit.Actor, permission: str) -> None:
    if actor.user is None or not actor.user.has_perm(permission):
        raise NotAllowed(f"You need the permission {permission!r} for this.")
