from celery import shared_task
from django.utils import timezone

from backoffice import approvals, audit, health


@shared_task
def heartbeat(**kwargs):
    health.record_heartbeat(now=timezone.now())


@shared_task
def expire_change_requests(**kwargs):
    return approvals.expire_change_requests(now=timezone.now())


@shared_task
def verify_audit_log(**kwargs):
    broken = audit.first_broken_link()
    if broken is not None:
        # Loud on purpose: a broken chain means someone edited the log outside the application.
        raise RuntimeError(f"operations log chain broken at entry #{broken.entry_id}: {broken.problem}")
    return "ok"
