"""The liquidations section of load_demo: fills paying in and drawing, one ADL event, a consistent ledger."""

from io import StringIO

import pytest
from django.core.management import call_command

from trading_risk.models import AdlEvent, InsuranceFund, InsuranceFundEntry, Liquidation

pytestmark = pytest.mark.django_db


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", "--seed", "5", "--customers", "60", stdout=out)
    return next(line for line in out.getvalue().splitlines() if line.startswith("liquidations: "))


class TestLiquidationDemo:
    def test_plants_liquidations_an_adl_event_and_a_ledger_that_adds_up(self):
        summary = load_demo()

        paid = list(Liquidation.objects.values_list("fund_paid", flat=True))
        assert any(p > 0 for p in paid)
        assert any(p < 0 for p in paid)
        event = AdlEvent.objects.get()
        assert event.allocations.exists()
        entries = list(InsuranceFundEntry.objects.order_by("pk"))
        assert {e.kind for e in entries} == {"TOP_UP", "LIQUIDATION_SURPLUS", "LIQUIDATION_SHORTFALL", "ADL"}
        assert entries[-1].balance_after == sum(e.amount for e in entries) == InsuranceFund.objects.get().balance
        assert "one ADL event" in summary

    def test_a_rerun_adds_nothing(self):
        load_demo()
        counts = (Liquidation.objects.count(), InsuranceFundEntry.objects.count())

        assert load_demo() == "liquidations: already there (demo liquidations exist)"
        assert (Liquidation.objects.count(), InsuranceFundEntry.objects.count()) == counts
