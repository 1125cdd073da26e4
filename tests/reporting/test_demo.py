import random
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice.demo import DemoOptions
from reporting.demo import build_large_trader_report
from reporting.models import Report


@pytest.mark.django_db
class TestReportingDemo:
    def test_builds_yesterdays_report_once(self):
        now = timezone.now()

        first = build_large_trader_report(random.Random(1), now, DemoOptions())
        second = build_large_trader_report(random.Random(1), now, DemoOptions())

        assert "Large-trader report" in first
        assert second == "already there"
        assert Report.objects.get().day == now.date() - timedelta(days=1)
