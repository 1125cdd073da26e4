from celery import shared_task
from django.utils import timezone

from accounts import channels, notifications, restrictions


@shared_task(autoretry_for=(channels.DeliveryFailed,), retry_backoff=True, max_retries=8)
def send_notification(*, notification_id, **kwargs):
    return notifications.send_notification(notification_id=notification_id, now=timezone.now())


@shared_task
def expire_restrictions(**kwargs):
    return restrictions.expire_restrictions(now=timezone.now())
