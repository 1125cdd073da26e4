"""Withdrawal requests, their decision, staff review and approvals, holds, and payout.

Lock order: customer row (serialises one customer's requests, so limits cannot be raced past), then
the withdrawal row. Staff actions and payout lock only the withdrawal row. Slow or outside calls
(Redis, the custodian) happen outside transactions; Celery follow-ups are enqueued after commit, and
a broker that is down never fails a decision (a periodic sweep pays what was approved).
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts import notifications
from accounts.models import Account, Customer
from backoffice import audit
from backoffice.errors import DomainError, InvalidInput
from trading_risk import selectors as prices
from withdrawals import addresses, custody, ivms101, rules, screening, selectors
from withdrawals.models import AssetNetwork, Payout, Withdrawal, WithdrawalApproval

logger = logging.getLogger(__name__)
REVIEW_PERMISSION = "withdrawals.review_withdrawal"


class RequestIdReused(DomainError):
    """This request_id was used before with a different payload."""

    code = "conflict"


class NotReviewable(DomainError):
    """This withdrawal is not waiting for a decision."""

    code = "not_pending"


class SelfApproval(DomainError):
    """You changed this withdrawal, so someone else must approve it."""

    code = "self_approval"


class AlreadyApproved(DomainError):
    """You have already approved this withdrawal."""

    code = "already_approved"


class IdentityNotConfirmed(DomainError):
    """A large withdrawal needs the customer's identity confirmed by phone or face first."""

    code = "identity_not_confirmed"


class AssetSuspended(DomainError):
    """Withdrawals of this asset are suspended; decide it after the asset resumes."""

    code = "asset_suspended"


class NotAllowed(DomainError):
    """You may not do this."""

    code = "permission_denied"
    status = 403


@dataclass(frozen=True)
class WithdrawalRequest:
    request_id: str
    account_id: str
    asset: str
    network: str
    amount: Decimal
    address: str
    requested_at: datetime
    travel_rule: dict | None = None

    def fingerprint(self) -> str:
        content = [
            self.account_id,
            self.asset,
            self.network,
            f"{self.amount.normalize():f}",
            self.address,
            self.requested_at.isoformat(),
            self.travel_rule,
        ]
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


# ---- the decision -----------------------------------------------------------------------------------------
def request_withdrawal(*, request: WithdrawalRequest, actor: audit.Actor, now: datetime) -> tuple[Withdrawal, bool]:
    """Decide a withdrawal request at once and store it; the same request again returns the first answer."""
    if (existing := _existing(request)) is not None:
        return existing, False
    asset_network, address, travel_rule = _checked(request, now=now)
    account = Account.objects.select_related("customer").filter(external_id=request.account_id).first()
    if account is None:
        raise _bad("account_id", "unknown account")
    # Outside calls first, outside the transaction: Redis, the screening lists, prices.
    context = {
        "infrastructure_ok": selectors.infrastructure_ok(now=now),
        "screening": screening.screen_address(network=request.network, address=address),
        "value_btc": prices.btc_equivalent(request.asset, request.amount, at=request.requested_at),
        "value_usd": _usd_value(request),
    }
    return _decide(request, account, asset_network, address, travel_rule, context, actor=actor, now=now)


def _checked(request: WithdrawalRequest, *, now: datetime) -> tuple[AssetNetwork, str, dict | None]:
    asset_network = selectors.asset_network(request.asset, request.network)
    if asset_network is None:
        raise _bad("asset", f"{request.asset} on {request.network} is not a known asset and network")
    try:
        address = addresses.validate(request.network, request.address)
    except addresses.InvalidAddress as exc:
        raise _bad("address", f"not a valid {request.network} address: {exc}") from None
    if request.amount <= 0:
        raise _bad("amount", "must be more than zero")
    if -request.amount.normalize().as_tuple().exponent > asset_network.decimals:  # trailing zeros are harmless
        raise _bad("amount", f"{request.asset} on {request.network} has at most {asset_network.decimals} decimals")
    return asset_network, address, _travel_rule(request.travel_rule, now=now)


def _travel_rule(data: dict | None, *, now: datetime) -> dict | None:
    if data is None:
        return None
    try:
        payload = ivms101.parse(data, today=now.date(), registration_authorities=selectors.registration_authorities())
        return ivms101.to_json(payload)
    except ivms101.InvalidIvms as exc:
        raise InvalidInput(
            "The travel-rule data is not valid IVMS101.",
            details=[{"field": f"travel_rule.{p}".rstrip("."), "message": m} for p, m in exc.problems],
        ) from None


def _usd_value(request: WithdrawalRequest) -> Decimal:
    usd = prices.usd_price(request.asset, at=request.requested_at)
    if usd is None:
        raise prices.Unpriced(f"No reference price for {request.asset} at or before {request.requested_at:%FT%T%z}.")
    return request.amount * usd


@transaction.atomic
def _decide(request, account, asset_network, address, travel_rule, context, *, actor, now):
    customer = Customer.objects.select_for_update(no_key=True).get(pk=account.customer_id)
    existing = _existing(request)
    if existing is not None:
        return existing, False
    decision = rules.decide(_snapshot(request, account, customer, asset_network, travel_rule, context, now=now))
    withdrawal = _store(request, account, asset_network, address, travel_rule, context, decision, now=now)
    if withdrawal is None:  # another request with this id committed while we decided
        return _existing(request), False
    audit.record(
        actor=actor,
        action="withdrawal.decide",
        target=withdrawal,
        now=now,
        after={
            "request_id": request.request_id,
            "status": withdrawal.status,
            "reasons": withdrawal.reasons,
            "value_btc": withdrawal.value_btc,
            "required_approvals": withdrawal.required_approvals,
        },
    )
    _follow_up(withdrawal, actor=actor, now=now)
    return withdrawal, True


def _existing(request: WithdrawalRequest) -> Withdrawal | None:
    found = Withdrawal.objects.select_related("asset_network").filter(request_id=request.request_id).first()
    if found is not None and found.fingerprint != request.fingerprint():
        raise RequestIdReused(f"request_id {request.request_id!r} was used before with a different payload.")
    return found


def _snapshot(request, account, customer, asset_network, travel_rule, context, *, now) -> rules.Snapshot:
    day, month = selectors.totals_btc(customer.pk, before=request.requested_at)
    return rules.Snapshot(
        requested_at=request.requested_at,
        value_btc=context["value_btc"],
        value_usd=context["value_usd"],
        limits=selectors.limits(kyc_level=customer.kyc_level, at=request.requested_at),
        password_changed_at=customer.password_changed_at,
        meets_kyc_level=screening.meets_withdrawal_level(customer, at=request.requested_at),
        restriction_codes=selectors.blocking_restriction_codes(account, now=now),
        screening=context["screening"].result,
        asset_suspended=asset_network.withdrawals_suspended,
        last_activity_at=selectors.last_activity_at(account, before=request.requested_at),
        has_travel_rule_data=travel_rule is not None,
        day_total_btc=day,
        month_total_btc=month,
        manual_confirmation=selectors.manual_confirmation_on(),
        infrastructure_ok=context["infrastructure_ok"],
    )


def _store(request, account, asset_network, address, travel_rule, context, decision, *, now) -> Withdrawal | None:
    try:
        with transaction.atomic():
            return Withdrawal.objects.create(
                request_id=request.request_id,
                fingerprint=request.fingerprint(),
                account=account,
                customer_id=account.customer_id,
                asset_network=asset_network,
                amount=request.amount,
                address=address,
                requested_at=request.requested_at,
                received_at=now,
                value_btc=context["value_btc"],
                value_usd=context["value_usd"],
                status=decision.status,
                reasons=list(decision.reasons),
                rules=[
                    {"rule": f.rule, "status": f.status, "reason": f.reason, "detail": f.detail}
                    for f in decision.findings
                ],
                screening=context["screening"].as_json(),
                travel_rule=travel_rule,
                hold_until=decision.hold_until,
                required_approvals=decision.required_approvals,
            )
    except IntegrityError:
        return None


def _follow_up(withdrawal: Withdrawal, *, actor: audit.Actor, now: datetime) -> None:
    if withdrawal.status == Withdrawal.Status.FROZEN:
        open_compliance_case(withdrawal, actor=actor, now=now)
    elif withdrawal.status == Withdrawal.Status.APPROVED:
        enqueue_payout(withdrawal)
    _tell_customer(withdrawal, now=now)


# What the customer hears of each outcome. FROZEN reads like any review: a suspicion is not disclosed.
_NOTICES = {
    Withdrawal.Status.HELD: ("withdrawal_held", ("SMS", "EMAIL")),
    Withdrawal.Status.PENDING_REVIEW: ("withdrawal_in_review", ("EMAIL",)),
    Withdrawal.Status.FROZEN: ("withdrawal_in_review", ("EMAIL",)),
    Withdrawal.Status.REJECTED: ("withdrawal_rejected", ("SMS", "EMAIL")),
}
_CUSTOMER_REASONS = {
    "password_changed_24h": "withdrawals are paused for 24 hours after a password change",
    "kyc_level_insufficient": "it is above what your verification level allows",
    "below_maintenance_margin": "your margin is below the maintenance level",
    "account_locked": "your account is locked",
    "asset_suspended": "withdrawals of this asset are suspended",
}


def _tell_customer(withdrawal: Withdrawal, *, now: datetime, reason: str = "") -> None:
    if withdrawal.status not in _NOTICES:
        return
    template, channels = _NOTICES[withdrawal.status]
    told = reason or "; ".join(_CUSTOMER_REASONS.get(r, "it could not be approved") for r in withdrawal.reasons[:1])
    notifications.notify_customer(
        customer=withdrawal.customer,
        template_code=template,
        channels_=channels,
        now=now,
        related=f"withdrawal:{withdrawal.pk}",
        context={
            "request_id": withdrawal.request_id,
            "amount": withdrawal.amount,
            "asset": withdrawal.asset_network.asset,
            "hold_until": f"{withdrawal.hold_until:%Y-%m-%d %H:%M}" if withdrawal.hold_until else "",
            "reason": told or "it could not be approved",
        },
    )


def open_compliance_case(withdrawal: Withdrawal, *, actor: audit.Actor, now: datetime):
    """A critical alert and a case for compliance about a frozen withdrawal."""
    from trading_risk import cases
    from trading_risk import services as trading_services
    from trading_risk.models import Alert

    rule = "high_risk_address" if "high_risk_address" in withdrawal.reasons else "sanctions_hit"
    alert, created = trading_services.open_alert(
        rule=rule,
        severity=Alert.Severity.CRITICAL,
        customer=withdrawal.customer,
        account=withdrawal.account,
        summary=f"Withdrawal {withdrawal.request_id} frozen: {', '.join(withdrawal.reasons)}",
        dedup_key=f"withdrawal:{withdrawal.pk}",
        actor=actor,
        now=now,
        details={"withdrawal": withdrawal.request_id, "address": withdrawal.address, "screening": withdrawal.screening},
    )
    if created:
        cases.open_case(alerts=[alert], title=f"Frozen withdrawal {withdrawal.request_id}", actor=actor, now=now)
    return alert


def enqueue_payout(withdrawal: Withdrawal) -> None:
    from withdrawals import tasks

    # robust: a broker that is down must not turn a committed decision into an error; the sweep pays it later.
    transaction.on_commit(partial(tasks.pay_out_withdrawal.delay, withdrawal_id=withdrawal.pk), robust=True)


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput("The request is invalid.", details=[{"field": field, "message": message}])


# ---- staff review -------------------------------------------------------------------------------------------
def _lock(withdrawal: Withdrawal) -> Withdrawal:
    return Withdrawal.objects.select_for_update(no_key=True).select_related("asset_network").get(pk=withdrawal.pk)


def _require(actor: audit.Actor, reason: str | None = None) -> None:
    if actor.user is None or not actor.user.has_perm(REVIEW_PERMISSION):
        raise NotAllowed(f"You need the permission {REVIEW_PERMISSION!r} for this.")
    if reason is not None and not reason.strip():
        raise InvalidInput("Give a reason.", details=[{"field": "reason", "message": "required"}])


def needs_identity_confirmation(withdrawal: Withdrawal) -> bool:
    return "large_withdrawal_hold" in withdrawal.reasons


@transaction.atomic
def approve_withdrawal(*, withdrawal: Withdrawal, actor: audit.Actor, reason: str, now: datetime) -> Withdrawal:
    """Record one approval; the withdrawal is approved (and paid out) once its tier has enough approvers."""
    _require(actor, reason)
    w = _lock(withdrawal)
    if w.status not in (Withdrawal.Status.PENDING_REVIEW, Withdrawal.Status.FROZEN):
        raise NotReviewable(f"This withdrawal is {w.get_status_display().lower()}.")
    if w.last_changed_by_id == actor.user.pk:
        raise SelfApproval()
    if w.approvals.filter(approver=actor.user).exists():
        raise AlreadyApproved()
    if needs_identity_confirmation(w) and not w.identity_confirmed_at:
        raise IdentityNotConfirmed()
    if w.asset_network.withdrawals_suspended:
        raise AssetSuspended()
    _save_approval(w, actor, reason, now)
    audit.record(actor=actor, action="withdrawal.approve", target=w, now=now, reason=reason)
    if w.approvals.count() >= w.required_approvals:
        _close(w, Withdrawal.Status.APPROVED, actor=actor, reason=reason, now=now)
        enqueue_payout(w)
    return w


def _save_approval(w: Withdrawal, actor: audit.Actor, reason: str, now: datetime) -> None:
    try:
        with transaction.atomic():
            WithdrawalApproval.objects.create(
                withdrawal=w, approver=actor.user, changed_by_id=w.last_changed_by_id, reason=reason, approved_at=now
            )
    except IntegrityError as exc:  # the database's once-per-person and four-eyes constraints
        raise SelfApproval("The database refused this approval (four-eyes rule).") from exc


@transaction.atomic
def reject_withdrawal(*, withdrawal: Withdrawal, actor: audit.Actor, reason: str, now: datetime) -> Withdrawal:
    """Turn a withdrawal down; one rejection with a reason closes it."""
    _require(actor, reason)
    w = _lock(withdrawal)
    if w.status not in selectors.QUEUE:
        raise NotReviewable(f"This withdrawal is {w.get_status_display().lower()}.")
    _close(w, Withdrawal.Status.REJECTED, actor=actor, reason=reason, now=now)
    _tell_customer(w, now=now, reason="it was declined after review")
    return w


def _close(w: Withdrawal, status: str, *, actor: audit.Actor, reason: str, now: datetime) -> None:
    before = w.status
    w.status, w.decided_at, w.decided_by, w.decision_reason = status, now, actor.label, reason
    w.save(update_fields=["status", "decided_at", "decided_by", "decision_reason"])
    audit.record(
        actor=actor,
        action=f"withdrawal.{status.lower()}",
        target=w,
        now=now,
        reason=reason,
        before={"status": before},
        after={"status": status, "approvals": w.approvals.count()},
    )


@transaction.atomic
def record_identity_confirmation(
    *, withdrawal: Withdrawal, method: str, note: str, actor: audit.Actor, now: datetime
) -> Withdrawal:
    """Record that the customer confirmed the withdrawal by phone or face; the recorder cannot approve it."""
    _require(actor, note)
    if method not in ("PHONE", "FACE"):
        raise InvalidInput("Choose PHONE or FACE.", details=[{"field": "method", "message": "unknown"}])
    w = _lock(withdrawal)
    if w.status not in selectors.QUEUE:
        raise NotReviewable()
    w.identity_confirmed_via, w.identity_confirmed_at, w.last_changed_by = method, now, actor.user
    w.save(update_fields=["identity_confirmed_via", "identity_confirmed_at", "last_changed_by"])
    audit.record(
        actor=actor, action="withdrawal.confirm_identity", target=w, now=now, reason=note, after={"method": method}
    )
    return w


@transaction.atomic
def attach_travel_rule(*, withdrawal: Withdrawal, data: dict, actor: audit.Actor, now: datetime) -> Withdrawal:
    """Attach or correct the IVMS101 data of a withdrawal under review; the editor cannot approve it."""
    _require(actor)
    clean = _travel_rule(data, now=now)
    w = _lock(withdrawal)
    if w.status not in selectors.QUEUE:
        raise NotReviewable()
    before = w.travel_rule
    w.travel_rule, w.last_changed_by = clean, actor.user
    w.save(update_fields=["travel_rule", "last_changed_by"])
    audit.record(
        actor=actor,
        action="withdrawal.travel_rule",
        target=w,
        now=now,
        before={"travel_rule": before},
        after={"travel_rule": clean},
    )
    return w


# ---- holds ------------------------------------------------------------------------------------------------
def release_due_holds(*, now: datetime) -> int:
    """Move every hold past its hold_until into review; returns how many moved (safe to rerun).

    A withdrawal of a suspended asset stays held until the asset resumes, whatever its hold_until.
    """
    due = Withdrawal.objects.filter(
        status=Withdrawal.Status.HELD, hold_until__lte=now, asset_network__withdrawals_suspended=False
    )
    return sum(_to_review(pk, why="hold_expired", now=now) for pk in due.values_list("pk", flat=True))


def release_suspension_holds(*, asset_network: AssetNetwork, now: datetime) -> int:
    """After an asset resumes, its held withdrawals whose own hold (if any) has ended go to review."""
    held = asset_network.withdrawals.filter(
        Q(hold_until__isnull=True) | Q(hold_until__lte=now), status=Withdrawal.Status.HELD
    )
    return sum(_to_review(pk, why="asset_resumed", now=now) for pk in held.values_list("pk", flat=True))


@transaction.atomic
def _to_review(pk: int, *, why: str, now: datetime) -> int:
    # Compare-and-set: a rerun, or a reviewer rejecting at the same moment, moves it at most once.
    moved = Withdrawal.objects.filter(pk=pk, status=Withdrawal.Status.HELD).update(
        status=Withdrawal.Status.PENDING_REVIEW
    )
    if moved:
        audit.record(
            actor=audit.Actor.system(why),
            action="withdrawal.to_review",
            target=("withdrawals.withdrawal", pk),
            now=now,
            before={"status": Withdrawal.Status.HELD},
            after={"status": Withdrawal.Status.PENDING_REVIEW},
        )
    return moved


# ---- payout -----------------------------------------------------------------------------------------------
def pay_out(*, withdrawal_id: int, now: datetime) -> Payout | None:
    """Pay an approved withdrawal exactly once: claim it under its row lock, then instruct the custodian."""
    payout = _claim_payout(withdrawal_id, now=now)
    if payout is not None:
        custody.submit(payout, now=now)  # outside the transaction: the custodian may be slow
    return payout


@transaction.atomic
def _claim_payout(withdrawal_id: int, *, now: datetime) -> Payout | None:
    w = (
        Withdrawal.objects.select_for_update(no_key=True)
        .select_related("asset_network")
        .filter(pk=withdrawal_id)
        .first()
    )
    if w is None or w.status != Withdrawal.Status.APPROVED:
        return None  # already paid, or not approved: nothing to do
    if w.asset_network.withdrawals_suspended:
        return None  # suspended after approval: paid by the sweep once the asset resumes
    payout = Payout.objects.create(withdrawal=w, idempotency_key=custody.idempotency_key(w), created_at=now)
    if not Withdrawal.objects.filter(pk=w.pk, status=Withdrawal.Status.APPROVED).update(
        status=Withdrawal.Status.SENT, sent_at=now
    ):
        raise RuntimeError("withdrawal changed under its row lock")
    audit.record(
        actor=audit.Actor.system("payout"),
        action="withdrawal.pay_out",
        target=w,
        now=now,
        before={"status": Withdrawal.Status.APPROVED},
        after={"status": Withdrawal.Status.SENT, "idempotency_key": payout.idempotency_key},
    )
    return payout


def pay_out_approved(*, now: datetime, limit: int = 1000) -> int:
    """Pay every approved withdrawal not yet paid (the sweep behind a lost or failed task)."""
    ids = list(
        Withdrawal.objects.filter(status=Withdrawal.Status.APPROVED).order_by("pk").values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in ids if pay_out(withdrawal_id=pk, now=now) is not None)
