"""Celery entry points for surveillance: hourly and daily detector runs, and partition upkeep."""

from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.utils import timezone

from backoffice import parameters
from trading_risk import detectors, partitions


def _hour(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@shared_task
def run_hourly_surveillance(*, window_end: str | None = None, **kwargs):
    """Wash trading, self-trade and excessive trading over the 24 h ending at the last full hour."""
    now = timezone.now()
    end = datetime.fromisoformat(window_end) if window_end else _hour(now)
    return detectors.run_detectors(detectors=detectors.HOURLY, window_end=end, now=now)


@shared_task
def run_daily_surveillance(*, window_end: str | None = None, **kwargs):
    """Every detector over the previous UTC day, plus the activity rollup and the behaviour-anomaly rule."""
    now = timezone.now()
    end = datetime.fromisoformat(window_end) if window_end else _hour(now).replace(hour=0)
    detectors.link_shared_identifiers(now=now)
    return detectors.run_detectors(detectors=detectors.DAILY, window_end=end, now=now)


@shared_task
def maintain_partitions(**kwargs):
    """Create a week of daily partitions ahead; drop days older than the retention period."""
    now = timezone.now()
    created = partitions.ensure_partitions(start=now.date() - timedelta(days=1), days=9)
    retention = parameters.param("surveillance.event_retention_days", at=now)
    dropped = partitions.drop_partitions_before(cutoff=now.date() - timedelta(days=retention))
    return {"created": created, "dropped": dropped}


# ---- margin -------------------------------------------------------------------------------------------------
@shared_task
def remargin(**kwargs):
    """Re-margin every book at the latest marks (queued when a mark-price batch commits)."""
    from trading_risk import margin_engine

    margin_engine.clear_queued_flag()
    result = margin_engine.remargin(now=timezone.now())
    return vars(result)


@shared_task
def apply_margin_consequences(**kwargs):
    """Notices, restrictions and alerts for the margin transitions not yet acted on."""
    from trading_risk import margin_engine

    done = margin_engine.apply_consequences(now=timezone.now())
    if done == 1000:  # more may be waiting: continue in a fresh task
        apply_margin_consequences.delay()
    return done


@shared_task
def reprice_positions(*, instrument_id: int, **kwargs):
    """Recompute an instrument's positions' tiers and prices once its new risk limits are in force."""
    from trading_risk import positions

    return positions.reprice_positions(instrument_id=instrument_id, now=timezone.now())
