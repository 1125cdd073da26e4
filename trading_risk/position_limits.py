"""Position limits, hedging exemptions and broker-member limits: the maker-checker actions that set them,
the services staff use on them, and the reads behind the admin and the reports.

Pre-trade checks read the same tables in their one query (trading_risk/pretrade.py); the decision itself is
the pure `rules.position_limit`. Limits, exemptions and member limits take effect only when a second person
approves them; revoking an exemption and recording a broker review are single-person actions (they tighten
or merely document), each audited.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from celery import shared_task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account, Customer
from backoffice import approvals, audit, parameters
from backoffice.errors import DomainError, InvalidInput
from trading_risk import services
from trading_risk.models import BrokerLimitReview, BrokerMember, HedgingExemption, Instrument, PositionLimit

REQUEST = "backoffice.request_change"
APPROVE = "trading_risk.approve_position_limit"
REVIEW = "trading_risk.review_broker_limit"
REVIEW_DUE_RULE = "broker_limit_review_due"


class NotInForce(DomainError):
    """This exemption is no longer in force."""

    code = "not_in_force"


# ---- input helpers -------------------------------------------------------------------------------------------
def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}.", details=[{"field": field, "message": message}])


_TOO_LARGE = Decimal(10) ** 20  # what numeric(38, 18) holds


def _amount(payload: dict, field: str, *, required: bool = True, allow_zero: bool = False) -> Decimal | None:
    """A BTC amount from the payload: None when blank and not required."""
    raw = payload.get(field)
    raw = "" if raw is None else str(raw).strip()
    if not raw:
        if required:
            raise _bad(field, "required")
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _bad(field, "must be a number") from None
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero) or value >= _TOO_LARGE:
        raise _bad(field, "must be a positive number below 10^20" if not allow_zero else "must be 0 or more")
    return value


def _product(payload: dict, *, required: bool) -> str:
    product = str(payload.get("product") or "").strip().upper()
    if required and not product:
        raise _bad("product", "required")
    if product and not Instrument.objects.filter(base=product).exclude(kind=Instrument.Kind.SPOT).exists():
        raise _bad("product", "no perpetual or dated contract has this base asset")
    return product


def _month(raw) -> date | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        return datetime.strptime(text[:7], "%Y-%m").date()
    except ValueError:
        raise _bad("contract_month", "must be YYYY-MM") from None


def _when(payload: dict, field: str) -> datetime:
    raw = payload.get(field)
    try:
        moment = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw or ""))
    except ValueError:
        raise _bad(field, "must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _bad(field, "needs a time zone")
    return moment


# ---- position limits -----------------------------------------------------------------------------------------
def _validate_limit(payload: dict) -> dict:
    month = _month(payload.get("contract_month"))
    customer_type = str(payload.get("customer_type") or "").strip().upper()
    if customer_type and customer_type not in Customer.Type.values:
        raise _bad("customer_type", f"must be one of {', '.join(Customer.Type.values)}")
    limit = _amount(payload, "limit_btc", required=False)
    delivery = _amount(payload, "delivery_month_limit_btc", required=False)
    if delivery is not None and (limit is None or delivery > limit):
        raise _bad("delivery_month_limit_btc", "must not exceed limit_btc")
    product = _product(payload, required=True)
    key = {"product": product, "contract_month": month, "customer_type": customer_type}
    if limit is None and not PositionLimit.objects.filter(ended_at__isnull=True, **key).exists():
        raise _bad("limit_btc", "required: there is no specific limit to remove")
    # limit_btc None removes the specific limit, so the default applies again.
    return {**key, "limit_btc": limit, "delivery_month_limit_btc": delivery}


def _describe_limit(payload: dict) -> str:
    scope = payload["product"] + (f" {str(payload['contract_month'])[:7]}" if payload["contract_month"] else "")
    tier = f" for {payload['customer_type']}" if payload["customer_type"] else ""
    if payload["limit_btc"] is None:
        return f"Remove the position limit of {scope}{tier}"
    return f"Position limit of {scope}{tier}: {payload['limit_btc']} BTC"


def _apply_limit(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    month = payload["contract_month"]
    month = date.fromisoformat(month) if isinstance(month, str) else month
    key = {"product": payload["product"], "contract_month": month, "customer_type": payload["customer_type"]}
    current = PositionLimit.objects.select_for_update(no_key=True).filter(ended_at__isnull=True, **key).first()
    if current is None and payload["limit_btc"] is None:
        raise _bad("limit_btc", "there is no longer a specific limit to remove")
    before = audit.snapshot(current, ("limit_btc", "delivery_month_limit_btc")) if current else None
    if current:
        current.ended_at = now
        current.save(update_fields=["ended_at"])
    limit = None
    if payload["limit_btc"] is not None:
        limit = PositionLimit.objects.create(
            **key,
            limit_btc=Decimal(payload["limit_btc"]),
            delivery_month_limit_btc=_optional(payload["delivery_month_limit_btc"]),
            effective_from=now,
            created_at=now,
            change_request=change_request,
        )
    after = audit.snapshot(limit, ("limit_btc", "delivery_month_limit_btc")) if limit else None
    audit.record(
        actor=actor,
        action="position_limit.set" if limit else "position_limit.remove",
        target=limit or current,
        now=now,
        before={**audit.jsonable(key), **(before or {})},
        after=after,
        reason=change_request.reason,
    )
    return {"position_limit_id": limit.pk if limit else None}


def _optional(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(value)


# ---- hedging exemptions ---------------------------------------------------------------------------------------
def _validate_exemption(payload: dict) -> dict:
    account = Account.objects.filter(external_id=str(payload.get("account_id") or "")).first()
    if account is None:
        raise _bad("account_id", "unknown account")
    expires_at = _when(payload, "expires_at")
    if expires_at <= timezone.now():
        raise _bad("expires_at", "must be in the future")
    return {"account_id": account.external_id, "product": _product(payload, required=False), "expires_at": expires_at}


def _describe_exemption(payload: dict) -> str:
    return (
        f"Hedging exemption for account {payload['account_id']} in {payload['product'] or 'every product'} "
        f"until {payload['expires_at']}"
    )


def _apply_exemption(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    expires_at = _when(payload, "expires_at")
    if expires_at <= now:
        raise _bad("expires_at", "has passed while the request waited; ask again")
    exemption = HedgingExemption.objects.create(
        account=Account.objects.get(external_id=payload["account_id"]),
        product=payload["product"],
        reason=change_request.reason,
        starts_at=now,
        expires_at=expires_at,
        requested_by=change_request.requested_by.get_username(),
        approved_by=actor.label,
        change_request=change_request,
    )
    audit.record(
        actor=actor,
        action="hedging_exemption.grant",
        target=exemption,
        now=now,
        after=audit.snapshot(exemption, ("account_id", "product", "starts_at", "expires_at")),
        reason=change_request.reason,
    )
    return {"hedging_exemption_id": exemption.pk}


@transaction.atomic
def revoke_exemption(*, exemption: HedgingExemption, actor: audit.Actor, reason: str, now: datetime) -> None:
    """End a hedging exemption before its expiry (the limit applies again at once)."""
    if not reason.strip():
        raise _bad("reason", "required")
    updated = HedgingExemption.objects.filter(pk=exemption.pk, revoked_at__isnull=True, expires_at__gt=now).update(
        revoked_at=now, revoked_by=actor.label
    )
    if not updated:
        raise NotInForce()
    audit.record(
        actor=actor,
        action="hedging_exemption.revoke",
        target=exemption,
        now=now,
        before={"revoked_at": None},
        after={"revoked_at": now},
        reason=reason,
    )


def exemptions_in_force(*, at: datetime):
    """Hedging exemptions that lift the limit at `at`, soonest expiry first."""
    return (
        HedgingExemption.objects.filter(revoked_at__isnull=True, starts_at__lte=at, expires_at__gt=at)
        .select_related("account__customer")
        .order_by("expires_at")
    )


def limits_in_force(*, at: datetime):
    """The specific position limits in force at `at` (everything else has the parameter's default)."""
    return PositionLimit.objects.filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at), effective_from__lte=at)


# ---- broker members --------------------------------------------------------------------------------------------
def _validate_member(payload: dict) -> dict:
    customer = Customer.objects.filter(external_id=str(payload.get("customer_id") or "")).first()
    if customer is None:
        raise _bad("customer_id", "unknown customer")
    if customer.type == Customer.Type.INDIVIDUAL:
        raise _bad("customer_id", "a broker member is a corporate customer")
    number = str(payload.get("member_number") or "").strip()
    if not number:
        raise _bad("member_number", "required")
    if BrokerMember.objects.filter(member_number=number).exclude(customer=customer).exists():
        raise _bad("member_number", "belongs to another member")
    capital = _amount(payload, "net_capital_btc", allow_zero=True)
    limit = _amount(payload, "limit_btc")
    if not within_capital(limit_btc=limit, net_capital_btc=capital):
        raise _bad("limit_btc", "exceeds net capital × position.broker_limit_capital_multiple")
    return {
        "customer_id": customer.external_id,
        "member_number": number,
        "net_capital_btc": capital,
        "limit_btc": limit,
    }


def within_capital(*, limit_btc: Decimal, net_capital_btc: Decimal, at: datetime | None = None) -> bool:
    """Whether a member's limit is within its net capital times the allowed multiple."""
    return limit_btc <= net_capital_btc * parameters.param("position.broker_limit_capital_multiple", at=at)


def _apply_member(*, payload: dict, change_request, actor: audit.Actor, now: datetime) -> dict:
    customer = Customer.objects.select_for_update(no_key=True).get(external_id=payload["customer_id"])
    member = BrokerMember.objects.filter(customer=customer).first()
    before = audit.snapshot(member, ("member_number", "net_capital_btc", "limit_btc")) if member else None
    values = {k: payload[k] for k in ("member_number", "net_capital_btc", "limit_btc")}
    if member is None:
        member = BrokerMember(customer=customer, created_at=now, next_review_date=_next_review(now))
    for field, value in values.items():
        setattr(member, field, value)
    member.updated_at, member.change_request = now, change_request
    member.save()
    audit.record(
        actor=actor,
        action="broker_member.set",
        target=member,
        now=now,
        before=before,
        after={**values, "next_review_date": member.next_review_date},
        reason=change_request.reason,
    )
    return {"broker_member_id": member.pk}


def _next_review(now: datetime) -> date:
    return now.date() + timedelta(days=parameters.param("position.broker_limit_review_days", at=now))


@transaction.atomic
def record_broker_review(
    *, member: BrokerMember, net_capital_btc: Decimal, notes: str, actor: audit.Actor, now: datetime
) -> BrokerLimitReview:
    """Record a review of a member's limit against its (new) net capital; the next review is due in 14 days."""
    if actor.user is None or not actor.user.has_perm(REVIEW):
        raise approvals.NotAllowed(f"You need the permission {REVIEW!r} for this.")
    _amount({"net_capital_btc": net_capital_btc}, "net_capital_btc", allow_zero=True)
    member = BrokerMember.objects.select_for_update(no_key=True).get(pk=member.pk)
    before = audit.snapshot(member, ("net_capital_btc", "last_reviewed_at", "next_review_date"))
    member.net_capital_btc, member.last_reviewed_at = net_capital_btc, now
    member.next_review_date, member.updated_at = _next_review(now), now
    member.save(update_fields=["net_capital_btc", "last_reviewed_at", "next_review_date", "updated_at"])
    review = BrokerLimitReview.objects.create(
        member=member,
        reviewed_at=now,
        reviewed_by=actor.label,
        net_capital_btc=net_capital_btc,
        limit_btc=member.limit_btc,
        within_capital=within_capital(limit_btc=member.limit_btc, net_capital_btc=net_capital_btc, at=now),
        notes=notes,
        next_review_date=member.next_review_date,
    )
    after = audit.snapshot(member, ("net_capital_btc", "last_reviewed_at", "next_review_date"))
    audit.record(
        actor=actor,
        action="broker_member.review",
        target=member,
        now=now,
        before=before,
        after={**after, "within_capital": review.within_capital},
        reason=notes,
    )
    return review


def overdue_broker_reviews(*, today: date):
    """Broker members whose review date has passed."""
    return BrokerMember.objects.filter(next_review_date__lt=today).select_related("customer").order_by("pk")


def raise_review_alerts(*, now: datetime) -> int:
    """An alert per member whose limit review is overdue, once per member and due date; returns how many opened."""
    actor = audit.Actor.system("broker_limit_reviews")
    opened = 0
    for member in overdue_broker_reviews(today=now.date()):
        _, created = services.open_alert(
            rule=REVIEW_DUE_RULE,
            severity="GENERAL",
            customer=member.customer,
            summary=f"Broker member {member.member_number}: the limit review due {member.next_review_date} is overdue",
            dedup_key=f"{REVIEW_DUE_RULE}:{member.pk}:{member.next_review_date}",
            actor=actor,
            now=now,
            details={"member_number": member.member_number, "due": member.next_review_date},
        )
        opened += created
    return opened


@shared_task
def check_broker_limit_reviews(**kwargs):
    """Daily: raise an alert for every broker member whose limit review is overdue."""
    return raise_review_alerts(now=timezone.now())


# ---- registration ---------------------------------------------------------------------------------------------
def change_actions() -> list[approvals.ChangeAction]:
    """The maker-checker actions of position limits (registered when the app is ready)."""
    return [
        approvals.ChangeAction(
            "position_limit.set",
            "Set or remove a position limit",
            REQUEST,
            APPROVE,
            validate=_validate_limit,
            apply=_apply_limit,
            describe=_describe_limit,
        ),
        approvals.ChangeAction(
            "hedging_exemption.grant",
            "Exempt an account's hedging positions from the position limit",
            REQUEST,
            APPROVE,
            validate=_validate_exemption,
            apply=_apply_exemption,
            describe=_describe_exemption,
        ),
        approvals.ChangeAction(
            "broker_member.set",
            "Set a broker member's position limit",
            REQUEST,
            APPROVE,
            validate=_validate_member,
            apply=_apply_member,
            describe=lambda p: (
                f"Broker member {p['member_number']}: limit {p['limit_btc']} BTC "
                f"(net capital {p['net_capital_btc']} BTC)"
            ),
        ),
    ]
