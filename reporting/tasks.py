"""Celery entry points for reports."""

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from backoffice import audit
from reporting import services


@shared_task
def build_daily_large_trader_report(*, day: str | None = None, **kwargs):
    """The large-trader report of the previous UTC day (or of `day`, YYYY-MM-DD), added to the archive."""
    now = timezone.now()
    report_day = date.fromisoformat(day) if day else now.date() - timedelta(days=1)
    report = services.generate_large_trader_report(
        day=report_day, actor=audit.Actor.system("large_trader_report"), now=now
    )
    return {"report_id": report.pk, "version": report.version, "rows": report.rows_count}
