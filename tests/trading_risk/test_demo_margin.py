"""The margin section of load_demo: risk-limit tables, positions and balances in every margin class."""

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Notification, Restriction
from trading_risk import margin_engine
from trading_risk.models import AccountMargin, Alert, Position, RiskLimitTable

pytestmark = pytest.mark.django_db


def load_demo(seed: int = 5) -> str:
    out = StringIO()
    call_command("load_demo", "--seed", str(seed), "--customers", "60", stdout=out)
    return next(line for line in out.getvalue().splitlines() if line.startswith("margin: "))


class TestMarginDemo:
    def test_every_class_has_accounts_and_the_move_left_its_consequences(self):
        margin_engine.reset_worker()

        summary = load_demo()

        assert RiskLimitTable.objects.count() == 2
        assert Position.objects.filter(liquidation_price__isnull=False).exists()
        classes = set(AccountMargin.objects.values_list("classification", flat=True))
        assert classes == set(margin_engine.CLASSES)
        assert set(AccountMargin.objects.values_list("book", flat=True)) == {"PERPETUAL", "FUTURE"}
        assert Restriction.objects.filter(code="below_maintenance_margin", lifted_at=None).exists()
        assert Alert.objects.filter(rule="margin_liquidation").exists()
        assert Notification.objects.filter(template_code="margin_warning").exists()
        assert "transitions" in summary

        assert load_demo() == "margin: already there (the perpetual has risk limits)"
