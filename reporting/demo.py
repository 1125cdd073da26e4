"""The reporting section of load_demo: yesterday's large-trader report, so the archive page has something."""

import random
from datetime import datetime, timedelta

from backoffice import demo
from reporting import services
from reporting.models import Report


@demo.section("large_trader_report")
def build_large_trader_report(rng: random.Random, now: datetime, options: demo.DemoOptions) -> str:
    day = now.date() - timedelta(days=1)
    if Report.objects.filter(kind=Report.Kind.LARGE_TRADER, day=day).exists():
        return "already there"
    report = services.generate_large_trader_report(day=day, actor=demo.ACTOR, now=now)
    return f"{report} with {report.rows_count} row(s)"
