"""Delivery of customer notifications, one adapter per channel.

The local backends deliver into the database outbox (the Notification row itself, shown in the admin),
so a development machine never texts or calls anyone. A real SMS or voice gateway plugs in by naming
its class in NOTIFICATION_CHANNELS; e-mail goes through Django's mailers.
"""

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string

from accounts.models import Notification


class DeliveryFailed(Exception):
    """The channel could not deliver now; the send is retried."""


class OutboxChannel:
    """Keeps the message in the outbox: the row is the delivery record."""

    def deliver(self, notification: Notification) -> str:
        return f"outbox-{notification.pk}"


class EmailChannel:
    def deliver(self, notification: Notification) -> str:
        message = EmailMessage(
            notification.subject,
            notification.body,
            settings.DEFAULT_FROM_EMAIL,
            [notification.recipient],
            headers={"X-Notification-Id": str(notification.pk)},
        )
        try:
            message.send()
        except OSError as exc:
            raise DeliveryFailed(str(exc)) from exc
        return f"email-{notification.pk}"


def channel_for(name: str):
    return import_string(settings.NOTIFICATION_CHANNELS[name])()
