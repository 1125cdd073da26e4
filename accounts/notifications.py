"""Customer notifications: render a template per channel, record it, deliver after commit.

Every risk notice leaves a Notification row whether or not delivery succeeds; delivery happens in a
Celery task after the transaction commits (no network inside a transaction).
"""

from datetime import datetime

from django.db import transaction
from django.template import Context, Template

from accounts import channels, tasks
from accounts.models import Customer, Notification, NotificationTemplate
from backoffice import audit
from backoffice.errors import DomainError


class MissingTemplate(DomainError):
    """No message template exists for this notice and channel."""

    code = "missing_template"


def notify_customer(
    *,
    customer: Customer,
    template_code: str,
    channels_: tuple[str, ...],
    now: datetime,
    context: dict | None = None,
    related: str = "",
) -> list[Notification]:
    """Queue one message per channel for the customer; delivery follows the commit."""
    templates = {t.channel: t for t in NotificationTemplate.objects.filter(code=template_code, channel__in=channels_)}
    missing = [c for c in channels_ if c not in templates]
    if missing:
        raise MissingTemplate(f"No {template_code!r} template for {', '.join(missing)}.")
    values = {"customer": customer, "name": customer.name, **(context or {})}
    created = [
        Notification.objects.create(
            customer=customer,
            channel=channel,
            template_code=template_code,
            recipient=customer.email if channel == NotificationTemplate.Channel.EMAIL else customer.phone,
            subject=_render(templates[channel].subject, values),
            body=_render(templates[channel].body, values),
            related=related,
            created_at=now,
        )
        for channel in channels_
    ]
    for notification in created:
        tasks.send_notification.delay_on_commit(notification_id=notification.pk)
    return created


def _render(text: str, values: dict) -> str:
    return Template(text).render(Context(values, autoescape=False)) if text else ""


def send_notification(*, notification_id: int, now: datetime) -> str:
    """Deliver one queued notification through its channel; a sent one is never sent again."""
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:  # rolled back after the task was queued: nothing to send
        return "MISSING"
    if notification.status == Notification.Status.SENT:
        return notification.status
    try:
        ref = channels.channel_for(notification.channel).deliver(notification)
    except channels.DeliveryFailed as exc:
        Notification.objects.filter(pk=notification.pk).update(attempts=notification.attempts + 1, error=str(exc)[:500])
        raise
    # Compare-and-set, so a redelivered task cannot mark the row twice.
    Notification.objects.filter(pk=notification.pk, status=Notification.Status.QUEUED).update(
        status=Notification.Status.SENT, sent_at=now, provider_ref=ref, attempts=notification.attempts + 1, error=""
    )
    return Notification.Status.SENT


@transaction.atomic
def update_template(
    *, template: NotificationTemplate, subject: str, body: str, actor: audit.Actor, now: datetime
) -> NotificationTemplate:
    """Change a message's wording (logged with before and after)."""
    template = NotificationTemplate.objects.select_for_update(no_key=True).get(pk=template.pk)
    before = {"subject": template.subject, "body": template.body}
    Template(body)  # a template that does not parse is refused here, not when a customer should be told
    template.subject, template.body, template.updated_at = subject, body, now
    template.save(update_fields=["subject", "body", "updated_at"])
    audit.record(
        actor=actor,
        action="notification_template.update",
        target=template,
        now=now,
        before=before,
        after={"subject": subject, "body": body},
    )
    return template
