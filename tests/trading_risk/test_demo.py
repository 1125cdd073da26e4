"""The surveillance section of load_demo: trades and order events with a planted case for every rule."""

from io import StringIO

import pytest
from django.core.management import call_command

from trading_risk.models import Alert, OrderCancelLadder, OrderEvent, Trade

pytestmark = pytest.mark.django_db


def load_demo(seed: int = 5) -> str:
    out = StringIO()
    call_command("load_demo", "--seed", str(seed), "--customers", "60", stdout=out)
    return next(line for line in out.getvalue().splitlines() if line.startswith("surveillance: "))


class TestSurveillanceDemo:
    def test_plants_a_case_for_every_rule_and_a_rerun_adds_nothing(self):
        summary = load_demo()

        assert Trade.objects.count() > 3000
        assert OrderEvent.objects.count() > 2000
        rules = set(Alert.objects.values_list("rule", flat=True))
        assert {"self_trade", "wash_trading", "excessive_trading", "frequent_order_cancel"} <= rules
        self_trade = Alert.objects.get(rule="self_trade")
        assert float(self_trade.details["volume_btc"]) >= 1000
        wash = Alert.objects.filter(rule="wash_trading")
        assert wash.count() == 2
        assert len({a.account.customer_id for a in wash}) == 1
        assert OrderCancelLadder.objects.filter(step__gte=1).exists()
        assert "planted: self-trade" in summary

        counts = (Trade.objects.count(), OrderEvent.objects.count(), Alert.objects.count())
        assert load_demo() == "surveillance: already there (demo trades exist)"
        assert (Trade.objects.count(), OrderEvent.objects.count(), Alert.objects.count()) == counts
