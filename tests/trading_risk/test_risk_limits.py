from datetime import timedelta
from decimal import Decimal

import pytest

from backoffice import approvals
from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from backoffice.models import ChangeRequest, OperationsLogEntry
from tests.factories import NOW
from tests.trading_risk.conftest import make_instrument, post
from tests.trading_risk.test_positions import (
    BINANCE,
    URL,
    _fresh_margin_worker,  # noqa: F401  (autouse fixture)
    futures_account,
    make_perpetual,
    position,
    step_table,
    stored,
)
from trading_risk import margin, risk_limits
from trading_risk.models import RiskLimitTable

BRACKETS = [{"floor": f, "cap": c, "maintenance_rate": m, "initial_rate": i} for f, c, m, i in BINANCE]


def request(user, payload, *, now=NOW):
    return approvals.request_change(
        action="risk_limit.set", payload=payload, actor=Actor.staff(user), reason="quarterly review", now=now
    )


def approve(user, change, *, now=NOW):
    return approvals.approve_change(change_request=change, actor=Actor.staff(user), reason="checked", now=now)


class TestMakerChecker:
    def test_a_table_applies_only_when_a_second_risk_officer_approves(self, risk_officer, second_risk_officer):
        make_perpetual()
        change = request(risk_officer, {"symbol": "BTCUSDT-PERP", "model": "BRACKET", "brackets": BRACKETS})
        assert not RiskLimitTable.objects.exists()

        approve(second_risk_officer, change)

        table = RiskLimitTable.objects.get()
        assert (table.version, table.change_request, table.effective_from) == (1, change, NOW)
        assert [b.maintenance_amount for b in table.brackets.all()] == [0, 50, 1300, 16300, 266300]
        assert OperationsLogEntry.objects.filter(action="risk_limit.set").count() == 1

    def test_the_requester_cannot_approve_their_own_table(self, risk_officer):
        make_perpetual()
        change = request(risk_officer, {"symbol": "BTCUSDT-PERP", "model": "BRACKET", "brackets": BRACKETS})

        with pytest.raises(approvals.SelfApproval):
            approve(risk_officer, change)

        assert not RiskLimitTable.objects.exists()

    def test_a_change_adds_a_version_and_leaves_the_old_one_as_it_was(self, risk_officer, second_risk_officer):
        make_perpetual()
        first = step_table()
        payload = {
            "symbol": "BTCUSDT-PERP",
            "model": "STEP",
            "base_limit": "300",
            "step": "100",
            "base_maintenance_rate": "0.01",
            "base_initial_rate": "0.02",
            "step_increment": "0.01",
            "effective_from": (NOW + timedelta(days=1)).isoformat(),
        }

        approve(second_risk_officer, request(risk_officer, payload))

        first.refresh_from_db()
        assert (first.version, first.base_limit) == (1, 200)
        second = RiskLimitTable.objects.get(version=2)
        assert second.effective_from == NOW + timedelta(days=1)
        assert risk_limits.table_in_force(first.instrument_id, at=NOW) == first
        assert risk_limits.table_in_force(first.instrument_id, at=NOW + timedelta(days=2)) == second

    def test_positions_are_repriced_when_a_new_table_is_approved(
        self, engine, risk_officer, second_risk_officer, django_capture_on_commit_callbacks
    ):
        make_perpetual()
        account = futures_account()
        post(engine, URL, [position(account)])
        change = request(risk_officer, {"symbol": "BTCUSDT-PERP", "model": "BRACKET", "brackets": BRACKETS})

        with django_capture_on_commit_callbacks(execute=True):
            approve(second_risk_officer, change)

        p = stored(account)
        assert (p.maintenance_rate, p.risk_limit.version) == (Decimal("0.005"), 1)
        assert round(p.liquidation_price, 2) == Decimal("45180.72")
        assert ChangeRequest.objects.get().status == ChangeRequest.Status.APPLIED

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"symbol": "ETHUSDT", "model": "STEP"}, "symbol"),
            (
                {"symbol": "BTCUSDT-PERP", "model": "BRACKET", "brackets": [BRACKETS[0], BRACKETS[2]]},
                "brackets[1].floor",
            ),
            (
                {"symbol": "BTCUSDT-PERP", "model": "BRACKET", "brackets": [{**BRACKETS[0], "initial_rate": "0.001"}]},
                "brackets[0].initial_rate",
            ),
            (
                {
                    "symbol": "BTCUSDT-PERP",
                    "model": "STEP",
                    "base_limit": "0",
                    "step": "1",
                    "base_maintenance_rate": "0.005",
                    "base_initial_rate": "0.01",
                    "step_increment": "0",
                },
                "base_limit",
            ),
            (
                {
                    "symbol": "BTCUSDT-PERP",
                    "model": "STEP",
                    "base_limit": "1",
                    "step": "1",
                    "base_maintenance_rate": "1.5",
                    "base_initial_rate": "0.01",
                    "step_increment": "0",
                },
                "base_maintenance_rate",
            ),
            (
                {
                    "symbol": "BTCUSDT-PERP",
                    "model": "STEP",
                    "base_limit": "1e25",
                    "step": "1",
                    "base_maintenance_rate": "0.005",
                    "base_initial_rate": "0.01",
                    "step_increment": "0",
                },
                "base_limit",
            ),
            (
                {
                    "symbol": "BTCUSDT-PERP",
                    "model": "STEP",
                    "base_limit": "1",
                    "step": "1",
                    "base_maintenance_rate": "0.000000001",
                    "base_initial_rate": "0.01",
                    "step_increment": "0",
                },
                "base_maintenance_rate",
            ),
            (
                {
                    "symbol": "BTCUSDT-PERP",
                    "model": "STEP",
                    "base_limit": "1",
                    "step": "1",
                    "base_maintenance_rate": "0.005",
                    "base_initial_rate": "0.01",
                    "step_increment": "0.123456789",
                },
                "step_increment",
            ),
        ],
    )
    def test_an_invalid_table_is_refused_when_requested(self, risk_officer, payload, field):
        make_perpetual()
        make_instrument("ETHUSDT", base="ETH")

        with pytest.raises(InvalidInput) as refused:
            request(risk_officer, payload)

        assert refused.value.details[0]["field"] == field
        assert not ChangeRequest.objects.exists()


class TestDefaults:
    def test_an_instrument_without_a_table_has_the_step_model_of_the_risk_parameters(self, db):
        make_perpetual()

        limits = risk_limits.default_limits("BTCUSDT-PERP", at=NOW)

        assert limits.tier(Decimal(999_999)) == margin.Tier(
            Decimal(0), Decimal(1_000_000), Decimal("0.005"), Decimal("0.01")
        )
        assert limits.tier(Decimal(1_000_000)).maintenance_rate == Decimal("0.01")

    def test_the_maintenance_amount_keeps_maintenance_margin_continuous_at_a_boundary(self):
        tiers = margin.tiers_with_amounts(
            [margin.Tier(Decimal(f), Decimal(c), Decimal(m), Decimal(i)) for f, c, m, i in BINANCE]
        )
        limits = margin.RiskLimits(tiers=tiers)

        below = margin.position_at_mark(
            limits,
            side=1,
            qty=Decimal(1),
            entry=Decimal(1),
            margin=Decimal(1),
            mark=Decimal("249999.99"),
            usd_rate=Decimal(1),
        )
        at = margin.position_at_mark(
            limits,
            side=1,
            qty=Decimal(1),
            entry=Decimal(1),
            margin=Decimal(1),
            mark=Decimal(250000),
            usd_rate=Decimal(1),
        )
        worked = margin.position_at_mark(
            limits,
            side=1,
            qty=Decimal(1),
            entry=Decimal(1),
            margin=Decimal(1),
            mark=Decimal(500000),
            usd_rate=Decimal(1),
        )

        assert below.maintenance_margin == Decimal("1199.99995")
        assert at.maintenance_margin == Decimal(1200)
        assert worked.maintenance_margin == Decimal(3700)


class TestAdmin:
    def test_staff_see_every_version_and_its_brackets(self, client, login, risk_officer):
        make_perpetual()
        table = risk_limits.create_table(
            payload=risk_limits._validate({"symbol": "BTCUSDT-PERP", "model": "BRACKET", "brackets": BRACKETS}),
            actor=Actor.system("tests"),
            now=NOW,
        )
        browser = login(risk_officer)

        listing = browser.get("/admin/trading_risk/risklimittable/")
        detail = browser.get(f"/admin/trading_risk/risklimittable/{table.pk}/change/")

        assert listing.status_code == 200
        assert "BTCUSDT-PERP" in listing.text
        assert detail.status_code == 200
        assert "16300" in detail.text.replace(",", "")

    def test_the_admin_needs_a_staff_login(self, client, db):
        response = client.get("/admin/trading_risk/risklimittable/")

        assert response.status_code == 302
