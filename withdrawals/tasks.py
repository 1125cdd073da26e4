"""Celery entry points: each reloads by id, calls one service, and is safe to run twice."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from withdrawals import services, wallets


@shared_task
def pay_out_withdrawal(*, withdrawal_id: int, **kwargs):
    payout = services.pay_out(withdrawal_id=withdrawal_id, now=timezone.now())
    return payout.idempotency_key if payout else None


@shared_task
def pay_out_approved(**kwargs):
    return services.pay_out_approved(now=timezone.now())


@shared_task
def release_due_holds(**kwargs):
    return services.release_due_holds(now=timezone.now())


@shared_task
def build_flow_review(**kwargs):
    """Yesterday's hot-wallet flow review (UTC), ready for sign-off."""
    now = timezone.now()
    return wallets.build_flow_review(day=(now - timedelta(days=1)).date(), now=now).pk
