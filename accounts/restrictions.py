"""Restrictions: the one place that answers what an account may do now, and the feed of changes to it.

Lock order: customer row, then restriction rows. Feed rows are numbered under the operations log's
advisory lock (held to commit), so the engine's cursor never passes a row that commits later.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from accounts import rules
from accounts.models import Account, Customer, Restriction, RestrictionChange
from backoffice import audit
from backoffice.errors import DomainError, InvalidInput


class AlreadyLifted(DomainError):
    """This restriction is no longer in force."""

    code = "not_in_force"


def in_force(now: datetime) -> Q:
    return Q(lifted_at__isnull=True, starts_at__lte=now) & (Q(until__isnull=True) | Q(until__gt=now))


def account_state(account: Account, *, now: datetime) -> dict:
    """The contract's restrictions answer for one account at `now`."""
    standing = _standing(account.customer_id, now=now)
    return _state_for(account, standing, account.customer.must_change_password)


def _standing(customer_id: int, *, now: datetime) -> list[Restriction]:
    return list(Restriction.objects.filter(in_force(now), customer_id=customer_id))


def _state_for(account: Account, restrictions: list[Restriction], must_change_password: bool) -> dict:
    applicable = [r for r in restrictions if r.account_id in (None, account.pk)]
    return rules.restriction_state(
        [rules.StandingRestriction(r.code, r.rule, r.until, r.symbol) for r in applicable],
        must_change_password=must_change_password,
    )


@transaction.atomic
def add_restriction(
    *,
    customer: Customer,
    code: str,
    rule: str,
    actor: audit.Actor,
    now: datetime,
    account: Account | None = None,
    symbol: str = "",
    reason: str = "",
    until: datetime | None = None,
    source: str = "",
) -> Restriction:
    """Impose a restriction now (until `until`, or until lifted) and publish it to the feed."""
    if code not in rules.EFFECTS:
        raise InvalidInput(f"{code!r} is not a restriction code.", details=[{"field": "code", "message": "unknown"}])
    if until is not None and until <= now:
        raise InvalidInput("The end must be in the future.", details=[{"field": "until", "message": "in the past"}])
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    restriction = Restriction.objects.create(
        customer=customer,
        account=account,
        symbol=symbol,
        code=code,
        rule=rule,
        reason=reason,
        starts_at=now,
        until=until,
        created_by=actor.label,
        source=source,
    )
    audit.record(
        actor=actor,
        action="restriction.add",
        target=restriction,
        now=now,
        reason=reason,
        after={
            "customer": customer.external_id,
            "account": account.external_id if account else None,
            "symbol": symbol,
            "code": code,
            "rule": rule,
            "until": until,
        },
    )
    _publish(restriction, RestrictionChange.Change.ADDED, now=now)
    return restriction


@transaction.atomic
def lift_restriction(*, restriction: Restriction, actor: audit.Actor, reason: str, now: datetime) -> Restriction:
    """End a restriction before its time; the reason is required and logged."""
    if not reason.strip():
        raise InvalidInput("Give a reason for lifting it.", details=[{"field": "reason", "message": "required"}])
    Customer.objects.select_for_update(no_key=True).get(pk=restriction.customer_id)
    restriction = Restriction.objects.select_for_update(no_key=True).get(pk=restriction.pk)
    if not restriction.in_force(now):
        raise AlreadyLifted()
    restriction.lifted_at, restriction.lifted_by, restriction.lift_reason = now, actor.label, reason
    restriction.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    audit.record(
        actor=actor,
        action="restriction.lift",
        target=restriction,
        now=now,
        reason=reason,
        before={"code": restriction.code, "until": restriction.until},
        after={"lifted_at": now},
    )
    _publish(restriction, RestrictionChange.Change.LIFTED, now=now)
    return restriction


def lift_restrictions_from(*, source: str, customer: Customer, actor: audit.Actor, reason: str, now: datetime) -> int:
    """Lift every restriction in force that `source` imposed on the customer (e.g. a lock); returns how many."""
    found = Restriction.objects.filter(in_force(now), customer=customer, source=source)
    return sum(1 for r in found if lift_restriction(restriction=r, actor=actor, reason=reason, now=now))


def expire_restrictions(*, now: datetime) -> int:
    """Publish the end of every restriction whose `until` has passed; returns how many."""
    due = Restriction.objects.filter(lifted_at__isnull=True, expiry_recorded=False, until__lte=now)
    return sum(_expire_one(pk, now=now) for pk in due.values_list("pk", flat=True))


@transaction.atomic
def _expire_one(pk: int, *, now: datetime) -> int:
    # Compare-and-set, so a concurrent run or a lift at the same moment publishes the end once.
    if not Restriction.objects.filter(pk=pk, lifted_at__isnull=True, expiry_recorded=False).update(
        expiry_recorded=True
    ):
        return 0
    restriction = Restriction.objects.get(pk=pk)
    audit.record(
        actor=audit.Actor.system("expire_restrictions"),
        action="restriction.expire",
        target=restriction,
        now=now,
        before={"code": restriction.code, "until": restriction.until},
    )
    _publish(restriction, RestrictionChange.Change.EXPIRED, now=max(now, restriction.until))
    return 1


def _publish(restriction: Restriction, change: str, *, now: datetime) -> None:
    audit.take_chain_lock()
    customer = restriction.customer
    accounts = [restriction.account] if restriction.account_id else list(customer.accounts.all())
    standing = _standing(customer.pk, now=now)
    RestrictionChange.objects.bulk_create(
        [
            RestrictionChange(
                account=account,
                restriction=restriction,
                change=change,
                at=now,
                state=_state_for(account, standing, customer.must_change_password),
            )
            for account in accounts
        ]
    )


def changes_after(cursor: int, *, limit: int) -> list[RestrictionChange]:
    """Feed entries after `cursor`, oldest first."""
    return list(
        RestrictionChange.objects.filter(pk__gt=cursor)
        .order_by("pk")
        .select_related("account", "account__customer", "restriction")[:limit]
    )


def publish_for_new_account(account: Account, *, now: datetime) -> None:
    """A new account of a restricted customer starts restricted: put the standing restrictions in the feed."""
    standing = [r for r in _standing(account.customer_id, now=now) if r.account_id is None]
    if not standing:
        return
    audit.take_chain_lock()
    state = _state_for(account, standing, account.customer.must_change_password)
    RestrictionChange.objects.bulk_create(
        [
            RestrictionChange(
                account=account, restriction=r, change=RestrictionChange.Change.ADDED, at=now, state=state
            )
            for r in standing
        ]
    )
