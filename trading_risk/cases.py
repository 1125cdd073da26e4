"""Working alerts: assignment, dispositions, cases with notes, calls and risk-warning letters.

Every function takes the acting staff member and writes its operations-log entry in the same
transaction. Lock order: the case row, then its alerts by pk.
"""

from datetime import datetime

from django.db import transaction
from django.template import Context, Template

from accounts.models import NotificationTemplate
from backoffice import audit
from backoffice.assignment import assign_work
from backoffice.errors import DomainError, InvalidInput
from trading_risk.models import Alert, Case, CaseNote, CustomerCall, WarningLetter

LETTER_TEMPLATE = "risk_warning_letter"


class AlreadyClosed(DomainError):
    """This alert or case is already closed."""

    code = "already_closed"


class MixedCustomers(DomainError):
    """A case groups alerts of one customer only."""

    code = "mixed_customers"


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidInput("Give a reason.", details=[{"field": "reason", "message": "required"}])


def _require_disposition(disposition: str) -> None:
    if disposition not in Alert.Disposition.values:
        raise InvalidInput("Choose a disposition.", details=[{"field": "disposition", "message": "unknown"}])


def assign_alert(*, alert: Alert, assignee, actor: audit.Actor, now: datetime) -> None:
    """Give the alert to one person to work."""
    assign_work(obj=alert, assignee=assignee, permission="trading_risk.work_alert", actor=actor, now=now)


def assign_case(*, case: Case, assignee, actor: audit.Actor, now: datetime) -> None:
    """Give the case to one person to work."""
    assign_work(obj=case, assignee=assignee, permission="trading_risk.work_case", actor=actor, now=now)


@transaction.atomic
def close_alert(*, alert: Alert, disposition: str, reason: str, actor: audit.Actor, now: datetime) -> Alert:
    """Close an open alert with a disposition and the reason for it."""
    _require_disposition(disposition)
    _require_reason(reason)
    updated = Alert.objects.filter(pk=alert.pk, status=Alert.Status.OPEN).update(
        status=Alert.Status.CLOSED, disposition=disposition, closing_reason=reason, closed_at=now, closed_by=actor.label
    )
    if not updated:
        raise AlreadyClosed()
    audit.record(
        actor=actor,
        action="alert.close",
        target=alert,
        now=now,
        reason=reason,
        before={"status": Alert.Status.OPEN},
        after={"status": Alert.Status.CLOSED, "disposition": disposition},
    )
    alert.refresh_from_db()
    return alert


@transaction.atomic
def open_case(*, alerts: list[Alert], title: str, actor: audit.Actor, now: datetime) -> Case:
    """Group related alerts of one customer into a new case."""
    if not alerts:
        raise InvalidInput("Choose at least one alert.")
    customers = {a.customer_id for a in alerts}
    if len(customers) > 1:
        raise MixedCustomers()
    case = Case.objects.create(
        customer_id=customers.pop(), title=title[:200] or alerts[0].summary[:200], opened_at=now, opened_by=actor.label
    )
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(case=case)
    audit.record(
        actor=actor,
        action="case.open",
        target=case,
        now=now,
        after={"title": case.title, "alerts": sorted(a.pk for a in alerts)},
    )
    return case


@transaction.atomic
def add_alerts_to_case(*, case: Case, alerts: list[Alert], actor: audit.Actor, now: datetime) -> None:
    """Add more alerts of the case's customer to it."""
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    if any(a.customer_id != case.customer_id for a in alerts):
        raise MixedCustomers()
    Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(case=case)
    audit.record(
        actor=actor, action="case.add_alerts", target=case, now=now, after={"alerts": sorted(a.pk for a in alerts)}
    )


@transaction.atomic
def add_note(*, case: Case, text: str, actor: audit.Actor, now: datetime, attachment=None) -> CaseNote:
    """A note on the case, optionally with a file."""
    if not text.strip():
        raise InvalidInput("Write the note.", details=[{"field": "text", "message": "required"}])
    note = CaseNote(case=case, author=actor.label, text=text, created_at=now)
    if attachment is not None:
        note.attachment = attachment
    note.save()
    audit.record(
        actor=actor,
        action="case.note",
        target=case,
        now=now,
        after={"note": note.pk, "attachment": note.attachment.name if note.attachment else ""},
    )
    return note


@transaction.atomic
def record_call(
    *, case: Case, outcome: str, summary: str, actor: audit.Actor, now: datetime, called_at: datetime | None = None
) -> CustomerCall:
    """Record the risk call with the customer on the case."""
    if outcome not in CustomerCall.Outcome.values:
        raise InvalidInput("Choose the call's outcome.", details=[{"field": "outcome", "message": "unknown"}])
    if not summary.strip():
        raise InvalidInput("Summarise the call.", details=[{"field": "summary", "message": "required"}])
    call = CustomerCall.objects.create(
        case=case,
        called_at=called_at or now,
        called_by=actor.label,
        phone=case.customer.phone,
        outcome=outcome,
        summary=summary,
    )
    audit.record(
        actor=actor,
        action="case.call",
        target=case,
        now=now,
        after={"call": call.pk, "outcome": outcome, "called_at": call.called_at},
    )
    return call


@transaction.atomic
def issue_warning_letter(*, case: Case, actor: audit.Actor, now: datetime) -> WarningLetter:
    """Generate the risk-warning letter for the case's customer from the template and keep it on the case."""
    template = NotificationTemplate.objects.get(code=LETTER_TEMPLATE, channel=NotificationTemplate.Channel.EMAIL)
    findings = "; ".join(case.alerts.order_by("opened_at").values_list("summary", flat=True)) or case.title
    context = Context(
        {"name": case.customer.name, "customer": case.customer, "findings": findings, "case": f"#{case.pk}"},
        autoescape=False,
    )
    letter = WarningLetter.objects.create(
        case=case,
        subject=Template(template.subject).render(context),
        body=Template(template.body).render(context),
        issued_at=now,
        issued_by=actor.label,
    )
    audit.record(actor=actor, action="case.warning_letter", target=case, now=now, after={"letter": letter.pk})
    return letter


@transaction.atomic
def close_case(*, case: Case, disposition: str, reason: str, actor: audit.Actor, now: datetime) -> Case:
    """Close the case and its open alerts with one disposition and reason."""
    _require_disposition(disposition)
    _require_reason(reason)
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    if case.status == Case.Status.CLOSED:
        raise AlreadyClosed()
    case.status, case.disposition, case.closing_reason = Case.Status.CLOSED, disposition, reason
    case.closed_at, case.closed_by = now, actor.label
    case.save(update_fields=["status", "disposition", "closing_reason", "closed_at", "closed_by"])
    audit.record(
        actor=actor,
        action="case.close",
        target=case,
        now=now,
        reason=reason,
        before={"status": Case.Status.OPEN},
        after={"status": Case.Status.CLOSED, "disposition": disposition},
    )
    for alert in case.alerts.filter(status=Alert.Status.OPEN).order_by("pk"):
        close_alert(alert=alert, disposition=disposition, reason=reason, actor=actor, now=now)
    return case
