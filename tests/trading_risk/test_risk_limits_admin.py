"""Requesting a new version of an instrument's risk-limit table from the admin."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backoffice import approvals
from backoffice.audit import Actor
from backoffice.models import ChangeRequest
from tests.trading_risk.conftest import make_instrument
from trading_risk import risk_limits
from trading_risk.models import RiskLimitTable

URL = "/admin/trading_risk/risklimittable/request/"
BRACKET_LINES = """0 50000 0.004 0.008
50000 250000 0.005 0.01
250000 1000000 0.01 0.02

1000000 10000000 0.025 0.05
10000000 20000000 0.05 0.1
"""
STEP = {
    "model": "STEP",
    "settlement": "LINEAR",
    "base_limit": "200",
    "step": "100",
    "base_maintenance_rate": "0.005",
    "base_initial_rate": "0.01",
    "step_increment": "0.005",
}


@pytest.fixture
def perpetual(db):
    make_instrument("BTCUSDT", base="BTC")
    return make_instrument("BTCUSDT-PERP", base="BTC", kind="PERPETUAL")


def approve(change, user):
    return approvals.approve_change(
        change_request=change, actor=Actor.staff(user), reason="checked", now=timezone.now()
    )


def existing_table(user, **payload):
    clean = risk_limits.change_action().validate({"symbol": "BTCUSDT-PERP", **payload})
    return risk_limits.create_table(payload=clean, actor=Actor.staff(user), now=timezone.now())


def step_request(**fields):
    return {"instrument": "BTCUSDT-PERP", **STEP, "reason": "quarterly review", **fields}


def bracket_request(lines=BRACKET_LINES, **fields):
    return {
        "instrument": "BTCUSDT-PERP",
        "model": "BRACKET",
        "settlement": "LINEAR",
        "brackets": lines,
        "reason": "quarterly review",
        **fields,
    }


class TestThePage:
    def test_renders_for_a_risk_officer_with_and_without_an_instrument_chosen(self, login, risk_officer, perpetual):
        client = login(risk_officer)

        assert client.get(URL).status_code == 200
        page = client.get(URL + "?instrument=BTCUSDT-PERP")
        assert page.status_code == 200
        assert "No table yet: the risk parameters' step model applies." in page.content.decode()

    def test_shows_the_version_in_force_with_its_computed_maintenance_amounts(self, login, risk_officer, perpetual):
        existing_table(
            risk_officer,
            model="BRACKET",
            brackets=[
                {"floor": "0", "cap": "50000", "maintenance_rate": "0.004", "initial_rate": "0.008"},
                {"floor": "50000", "cap": "250000", "maintenance_rate": "0.005", "initial_rate": "0.01"},
            ],
        )

        response = login(risk_officer).get(URL + "?instrument=BTCUSDT-PERP")

        current = response.content.decode().split('id="current-limits"')[1]
        assert "Version 1" in current
        assert "<td>50</td>" in current  # 50000 × (0.005 − 0.004), computed, never typed
        assert response.context["form"].initial["brackets"] == "0 50000 0.004 0.008\n50000 250000 0.005 0.01"

    def test_prefills_the_step_model_from_the_version_in_force(self, login, risk_officer, perpetual):
        existing_table(risk_officer, **STEP)

        form = login(risk_officer).get(URL + "?instrument=BTCUSDT-PERP").context["form"]

        assert {k: form.initial[k] for k in ("model", "base_limit", "step_increment")} == {
            "model": "STEP",
            "base_limit": "200",
            "step_increment": "0.005",
        }

    def test_shows_requests_waiting_for_approval(self, login, risk_officer, perpetual):
        client = login(risk_officer)
        client.post(URL, step_request())
        change = ChangeRequest.objects.get()

        page = client.get(URL + "?instrument=BTCUSDT-PERP").content.decode()

        assert f"/admin/backoffice/changerequest/{change.pk}/change/" in page

    def test_the_table_list_links_to_the_request_page(self, login, risk_officer, perpetual):
        existing_table(risk_officer, **STEP)

        page = login(risk_officer).get("/admin/trading_risk/risklimittable/").content.decode()

        assert f'href="{URL}"' in page
        assert f'href="{URL}?instrument=BTCUSDT-PERP"' in page

    def test_spot_instruments_are_not_offered(self, login, risk_officer, perpetual):
        form = login(risk_officer).get(URL).context["form"]

        assert [i.symbol for i in form.fields["instrument"].queryset] == ["BTCUSDT-PERP"]


class TestRequests:
    def test_a_step_table_is_pending_until_another_risk_officer_approves_it(
        self, login, risk_officer, second_risk_officer, perpetual
    ):
        response = login(risk_officer).post(URL, step_request(contract_size="1"))

        change = ChangeRequest.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/admin/backoffice/changerequest/{change.pk}/change/"
        assert (change.action, change.status, change.requested_by) == ("risk_limit.set", "PENDING", risk_officer)
        assert not RiskLimitTable.objects.exists()

        approve(change, second_risk_officer)

        table = RiskLimitTable.objects.get()
        assert (table.version, table.model, table.change_request) == (1, "STEP", change)
        assert (table.base_limit, table.step, table.base_maintenance_rate, table.step_increment) == (
            Decimal("200"),
            Decimal("100"),
            Decimal("0.005"),
            Decimal("0.005"),
        )

    def test_a_bracket_table_gets_its_maintenance_amounts_computed_on_approval(
        self, login, risk_officer, second_risk_officer, perpetual
    ):
        login(risk_officer).post(URL, bracket_request())
        change = ChangeRequest.objects.get()
        assert len(change.payload["brackets"]) == 5
        assert not RiskLimitTable.objects.exists()

        approve(change, second_risk_officer)

        table = RiskLimitTable.objects.get()
        assert [b.maintenance_amount for b in table.brackets.order_by("floor")] == [0, 50, 1300, 16300, 266300]

    def test_the_requester_cannot_approve_their_own_table(self, login, risk_officer, perpetual):
        login(risk_officer).post(URL, step_request())

        with pytest.raises(approvals.SelfApproval):
            approve(ChangeRequest.objects.get(), risk_officer)

        assert not RiskLimitTable.objects.exists()

    def test_a_later_start_and_inverse_settlement_are_carried_to_the_table(
        self, login, risk_officer, second_risk_officer, perpetual
    ):
        start = (timezone.now() + timedelta(days=7)).replace(second=0, microsecond=0)

        login(risk_officer).post(
            URL,
            step_request(settlement="INVERSE", contract_size="100", effective_from=start.strftime("%Y-%m-%d %H:%M")),
        )
        approve(ChangeRequest.objects.get(), second_risk_officer)

        table = RiskLimitTable.objects.get()
        assert (table.settlement, table.contract_size, table.effective_from) == ("INVERSE", Decimal("100"), start)

    def test_the_other_models_fields_are_ignored(self, login, risk_officer, perpetual):
        login(risk_officer).post(URL, step_request(brackets="not read"))

        assert "brackets" not in ChangeRequest.objects.get().payload


class TestBadInput:
    @pytest.mark.parametrize(
        ("data", "field"),
        [
            (step_request(base_limit=""), "base_limit"),
            (step_request(step="many"), "step"),
            (step_request(base_limit="-1"), "base_limit"),
            (step_request(base_limit="1" + "0" * 21), "base_limit"),
            (step_request(base_maintenance_rate="1.5"), "base_maintenance_rate"),
            (step_request(base_initial_rate="0.001"), "base_initial_rate"),
            (step_request(base_maintenance_rate="0.000000001"), "base_maintenance_rate"),
            (step_request(contract_size="0"), "contract_size"),
            (step_request(effective_from="2020-01-01 00:00"), "effective_from"),
            (step_request(model="CURVE"), "model"),
            (step_request(instrument="BTCUSDT"), "instrument"),
            (step_request(instrument="NOPE"), "instrument"),
            (step_request(reason=" "), "reason"),
            (bracket_request(lines=""), "brackets"),
            (bracket_request(lines="0 50000 0.004"), "brackets"),
            (bracket_request(lines="0 50000 0.004 lots"), "brackets"),
            (bracket_request(lines="0 50,000 0.004 0.008"), "brackets"),
            (bracket_request(lines="0 50000 0.004 0.008\n60000 250000 0.005 0.01"), "brackets"),
            (bracket_request(lines="0 50000 0.004 0.002"), "brackets"),
            (bracket_request(lines="0 50000 0.004 0.008\n50000 40000 0.005 0.01"), "brackets"),
            (bracket_request(lines="0 50000 0.005 0.008\n50000 250000 0.004 0.01"), "brackets"),
        ],
    )
    def test_is_a_form_error_and_requests_nothing(self, login, risk_officer, perpetual, data, field):
        response = login(risk_officer).post(URL, data)

        assert response.status_code == 200
        assert field in response.context["form"].errors
        assert not ChangeRequest.objects.exists()

    def test_a_bracket_error_names_the_line_it_is_on(self, login, risk_officer, perpetual):
        lines = "0 50000 0.004 0.008\n\n60000 250000 0.005 0.01"

        response = login(risk_officer).post(URL, bracket_request(lines=lines))

        assert response.context["form"].errors["brackets"] == [
            "Line 3: floor must be 50000 (brackets are contiguous from 0)."
        ]


class TestAccess:
    def test_an_auditor_can_neither_open_nor_submit_the_request_page(self, login, auditor, perpetual):
        client = login(auditor)

        assert client.get(URL).status_code == 403
        assert client.post(URL, step_request()).status_code == 403
        assert not ChangeRequest.objects.exists()
        assert URL not in client.get("/admin/trading_risk/risklimittable/").content.decode()

    def test_a_password_without_the_second_factor_requests_nothing(self, client, risk_officer, perpetual):
        client.force_login(risk_officer)

        assert client.post(URL, step_request()).status_code == 302
        assert not ChangeRequest.objects.exists()
