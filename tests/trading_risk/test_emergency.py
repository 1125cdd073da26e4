from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import restrictions
from backoffice import approvals, parameters
from backoffice.audit import Actor
from backoffice.models import OperationsLogEntry
from tests.factories import make_account
from tests.trading_risk.conftest import post
from trading_risk.models import Announcement, TradingHalt


def order(**changes):
    return {"account_id": "ACC1", "symbol": "ETHUSDT", "side": "buy", "qty": "1", "price": "4000", **changes}


@pytest.fixture
def account(market):
    return make_account(external_id="ACC1")


@pytest.fixture
def decide(risk_officer, second_risk_officer):
    """Request a change as one risk officer and approve it as another."""

    def run(action, payload, reason="market disruption"):
        change = approvals.request_change(
            action=action, payload=payload, actor=Actor.staff(risk_officer), reason=reason, now=timezone.now()
        )
        return approvals.approve_change(
            change_request=change, actor=Actor.staff(second_risk_officer), reason="ok", now=timezone.now()
        )

    return run


class TestHalts:
    def test_a_symbol_halt_takes_effect_only_on_a_second_persons_approval(self, engine, account, risk_officer):
        change = approvals.request_change(
            action="emergency.halt_symbol",
            payload={"symbol": "ETHUSDT"},
            actor=Actor.staff(risk_officer),
            reason="exchange hack",
            now=timezone.now(),
        )
        assert post(engine, "/api/v1/pre-trade-checks/", order()).json()["allowed"] is True

        with pytest.raises(approvals.SelfApproval):
            approvals.approve_change(
                change_request=change, actor=Actor.staff(risk_officer), reason="", now=timezone.now()
            )

        assert not TradingHalt.objects.exists()

    def test_an_approved_halt_refuses_orders_and_shows_in_the_restrictions(self, engine, account, decide):
        decide("emergency.halt_symbol", {"symbol": "ETHUSDT"})

        halted = post(engine, "/api/v1/pre-trade-checks/", order(reduce_only=True)).json()
        other = post(engine, "/api/v1/pre-trade-checks/", order(symbol="BTCUSDT", price="100000")).json()
        state = restrictions.account_state(account, now=timezone.now())

        assert halted == {"allowed": False, "reasons": ["symbol_halted"]}
        assert other["allowed"] is True
        assert {"code": "symbol_halted", "rule": "emergency.halt", "symbol": "ETHUSDT"} in state["reasons"]
        assert Announcement.objects.get().title == "Trading in ETHUSDT is halted"

    def test_close_only_accepts_only_reducing_orders(self, engine, account, decide):
        decide("emergency.halt_symbol", {"symbol": "ETHUSDT", "mode": "CLOSE_ONLY"})

        opening = post(engine, "/api/v1/pre-trade-checks/", order()).json()
        closing = post(engine, "/api/v1/pre-trade-checks/", order(reduce_only=True)).json()

        assert opening == {"allowed": False, "reasons": ["restricted_open", "symbol_halted"]}
        assert closing == {"allowed": True, "reasons": []}

    def test_halting_all_trading_stops_every_account(self, engine, account, decide):
        decide("emergency.halt_symbol", {"symbol": ""})

        state = restrictions.account_state(account, now=timezone.now())

        assert state["can_trade"] is False
        assert post(engine, "/api/v1/pre-trade-checks/", order(symbol="BTCUSDT")).json()["reasons"] == ["symbol_halted"]

    def test_resuming_lifts_the_halt_and_its_restrictions(self, engine, account, decide):
        decide("emergency.halt_symbol", {"symbol": "ETHUSDT"})
        halt = TradingHalt.objects.get()

        decide("emergency.resume", {"halt_id": halt.pk}, reason="incident over")

        assert post(engine, "/api/v1/pre-trade-checks/", order()).json()["allowed"] is True
        assert restrictions.account_state(account, now=timezone.now())["reasons"] == []
        assert list(Announcement.objects.order_by("pk").values_list("template_code", flat=True)) == [
            "trading_halt",
            "trading_resumed",
        ]

    def test_a_second_halt_of_the_same_symbol_is_refused(self, account, decide):
        decide("emergency.halt_symbol", {"symbol": "ETHUSDT"})

        with pytest.raises(approvals.DomainError):
            decide("emergency.halt_symbol", {"symbol": "ETHUSDT"})

    def test_every_step_is_in_the_operations_log(self, account, decide):
        decide("emergency.halt_symbol", {"symbol": "ETHUSDT"})

        actions = set(OperationsLogEntry.objects.values_list("action", flat=True))

        assert {
            "change_request.open",
            "change_request.approve",
            "emergency.halt",
            "restriction.add",
            "announcement.draft",
            "change_request.apply",
        } <= actions


class TestMaintenanceMargin:
    def test_raising_a_symbols_maintenance_margin_is_a_scoped_parameter_change(self, account, decide):
        decide("emergency.raise_maintenance_margin", {"symbol": "ETHUSDT", "value": "0.02"})
        parameters.clear_cache()

        assert parameters.param("margin.base_maintenance_rate", scope="ETHUSDT") == Decimal("0.02")
        assert parameters.param("margin.base_maintenance_rate", scope="BTCUSDT") == Decimal("0.005")
        assert Announcement.objects.get().template_code == "maintenance_margin_raise"

    def test_an_emergency_change_cannot_lower_the_rate(self, account, decide):
        with pytest.raises(approvals.InvalidInput):
            decide("emergency.raise_maintenance_margin", {"symbol": "ETHUSDT", "value": "0.001"})


class TestAnnouncements:
    def test_a_drafted_announcement_is_published_only_after_approval(self, account, decide):
        decide("emergency.halt_symbol", {"symbol": "ETHUSDT"})
        announcement = Announcement.objects.get()

        decide("announcement.publish", {"announcement_id": announcement.pk})

        announcement.refresh_from_db()
        assert announcement.status == Announcement.Status.PUBLISHED
