"""Celery entry points for screening: one customer after a data change, everyone daily and after a list load."""

from celery import shared_task
from django.utils import timezone

from accounts.models import Customer
from backoffice import audit
from kyc import services


@shared_task
def screen_customer(*, customer_id, **kwargs):
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return 0
    hits = services.screen_customer(customer=customer, actor=audit.Actor.system("screen_customer"), now=timezone.now())
    return len(hits)


@shared_task
def rescreen_all(**kwargs):
    return services.rescreen_all(actor=audit.Actor.system("rescreen_all"), now=timezone.now())
