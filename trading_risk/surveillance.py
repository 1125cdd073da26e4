"""What a surveillance finding does: an alert for a person, and the action risk officers chose for the rule.

Snoozes silence one rule for one account until a time; a snoozed finding opens nothing and does nothing.
"""

from datetime import datetime, timedelta

from django.db import transaction

from accounts import notifications, restrictions
from accounts.models import Account
from backoffice import audit, parameters
from backoffice.errors import InvalidInput
from trading_risk import rules
from trading_risk.models import Alert, RuleSnooze
from trading_risk.services import open_alert

RULE_CODES = ("wash_trading", "self_trade", "excessive_trading", "frequent_order_cancel", "behaviour_anomaly")


def is_snoozed(*, account_id: int, rule: str, now: datetime) -> bool:
    return RuleSnooze.objects.filter(account_id=account_id, rule=rule, until__gt=now, ended_at__isnull=True).exists()


def snoozed_accounts(*, rule: str, now: datetime) -> set[int]:
    """Accounts for which `rule` is silenced now (one query for a whole detector run)."""
    return set(
        RuleSnooze.objects.filter(rule=rule, until__gt=now, ended_at__isnull=True).values_list("account_id", flat=True)
    )


@transaction.atomic
def snooze_rule(
    *, account: Account, rule: str, until: datetime, reason: str, actor: audit.Actor, now: datetime
) -> RuleSnooze:
    """Silence `rule` for the account until `until`; the reason is required and logged."""
    if rule not in RULE_CODES:
        raise InvalidInput(f"{rule!r} is not a surveillance rule.", details=[{"field": "rule", "message": "unknown"}])
    if until <= now:
        raise InvalidInput("The snooze must end in the future.", details=[{"field": "until", "message": "in the past"}])
    if not reason.strip():
        raise InvalidInput("Give a reason for the snooze.", details=[{"field": "reason", "message": "required"}])
    snooze = RuleSnooze.objects.create(
        account=account, rule=rule, until=until, reason=reason, created_at=now, created_by=actor.label
    )
    audit.record(
        actor=actor,
        action="rule.snooze",
        target=snooze,
        now=now,
        reason=reason,
        after={"account": account.external_id, "rule": rule, "until": until},
    )
    return snooze


@transaction.atomic
def end_snooze(*, snooze: RuleSnooze, actor: audit.Actor, now: datetime) -> None:
    """End a snooze early (compare-and-set, so it is ended and logged once)."""
    if RuleSnooze.objects.filter(pk=snooze.pk, ended_at__isnull=True).update(ended_at=now):
        audit.record(actor=actor, action="rule.snooze_end", target=snooze, now=now, before={"until": snooze.until})


@transaction.atomic
def act_on_finding(
    *,
    finding: rules.Finding,
    account: Account,
    symbol: str,
    dedup_key: str,
    details: dict,
    actor: audit.Actor,
    now: datetime,
) -> tuple[Alert, bool]:
    """Open the finding's alert and, the first time only, take the rule's action against the account."""
    alert, created = open_alert(
        rule=finding.rule,
        severity=finding.severity,
        customer=account.customer,
        account=account,
        symbol=symbol,
        summary=finding.summary,
        dedup_key=dedup_key,
        actor=actor,
        now=now,
        details={**details, "action": finding.action},
    )
    if created:
        _take_action(finding, account, alert, actor=actor, now=now)
    return alert, created


def _take_action(finding: rules.Finding, account: Account, alert: Alert, *, actor: audit.Actor, now: datetime) -> None:
    if finding.action == rules.WARN:
        notifications.notify_customer(
            customer=account.customer,
            template_code="surveillance_warning",
            channels_=("SMS", "EMAIL"),
            now=now,
            context={"finding": finding.summary, "account": account.external_id, "symbol": alert.symbol},
            related=f"alert:{alert.pk}",
        )
    elif finding.action in rules.RESTRICTION_CODES:
        hours = parameters.param("surveillance.rule_restriction_hours", at=now)
        restrictions.add_restriction(
            customer=account.customer,
            account=account,
            code=rules.RESTRICTION_CODES[finding.action],
            rule=finding.rule,
            actor=actor,
            now=now,
            until=now + timedelta(hours=hours),
            reason=finding.summary,
            source=f"alert:{alert.pk}",
        )
