"""The margin dashboard and the per-account margin page: staff only (login + TOTP), read with the view
permission, showing the margin picture, the queue, ADL rankings and the insurance funds."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backoffice.models import ChangeRequest
from tests.factories import SYSTEM, make_account, make_staff
from tests.trading_risk.margin_fixtures import (
    make_margin_state,
    make_perpetual,
    make_position,
    set_mark,
    top_up,
)
from trading_risk import liquidation
from trading_risk.models import InsuranceFundEntry

D = Decimal
DASHBOARD = "/admin/margin/"


@pytest.fixture
def book(db, risk_officer, second_risk_officer):
    """A perpetual at mark 45,000 with a long past its liquidation price, a short ranked for ADL, margin states
    across the ratio bands and a fund with a top-up, a surplus and an ADL."""
    perp = make_perpetual()
    set_mark(perp, "45000")
    doomed = make_account(external_id="DOOMED")
    make_position(perp, account=doomed, liquidation_price="45200", bankruptcy_price="45000")
    make_margin_state(doomed, equity="90", maintenance="100", classification="LIQUIDATION")
    winner = make_account(external_id="WINNER")
    make_position(perp, account=winner, side="SHORT", qty="0.5", entry="60000", bankruptcy_price="66000")
    make_margin_state(winner, equity="5000", maintenance="100")
    make_margin_state(make_account(external_id="EDGE"), equity="120", maintenance="100", classification="WARNING")
    top_up("USDT", "50", requester=risk_officer, approver=second_risk_officer)
    for n, fill in enumerate(["45100", "44800"]):
        liquidation.record_liquidations(
            items=[
                liquidation.LiquidationIn(
                    liquidation_id=f"L{n}",
                    account_id="DOOMED",
                    symbol=perp.symbol,
                    side="LONG",
                    qty=D(1),
                    bankruptcy_price=D(45000),
                    fill_price=D(fill),
                    at=perp.prices.get().at,
                )
            ],
            actor=SYSTEM,
            now=perp.prices.get().at,
        )
    return perp


class TestDashboard:
    def test_shows_ratios_the_queue_rankings_and_the_fund_to_a_risk_officer(self, login, risk_officer, book):
        page = login(risk_officer).get(DASHBOARD)

        assert page.status_code == 200
        html = page.content.decode()
        assert 'aria-label="accounts by margin ratio"' in html
        assert "<title>&lt; 1: 1 accounts</title>" in html
        assert "<title>1.1–1.25: 1 accounts</title>" in html
        nearest = html.split('id="nearest"')[1].split("</table>")[0]
        assert nearest.index("DOOMED") < nearest.index("EDGE") < nearest.index("WINNER")
        queue = html.split('id="liquidation-queue"')[1].split("</table>")[0]
        assert "DOOMED" in queue
        assert "WINNER" not in queue
        assert "ADL ranking BTCUSDT-PERP" in html
        assert 'aria-label="USDT insurance fund balance over time"' in html
        assert html.count("<circle") == InsuranceFundEntry.objects.count() == 3
        assert "L1" in html.split('id="adl-events"')[1]

    def test_an_auditor_may_read_it(self, login, auditor, book):
        assert login(auditor).get(DASHBOARD).status_code == 200

    def test_renders_with_nothing_in_it(self, login, risk_officer, db):
        page = login(risk_officer).get(DASHBOARD)

        assert page.status_code == 200
        assert "No fund has been opened yet." in page.content.decode()

    def test_is_refused_without_login(self, client, book):
        response = client.get(DASHBOARD)

        assert response.status_code == 302
        assert "/login" in response["Location"]

    def test_is_refused_with_a_password_but_no_second_factor(self, client, risk_officer, book):
        client.force_login(risk_officer)

        response = client.get(DASHBOARD)

        assert response.status_code == 302
        assert "DOOMED" not in response.content.decode()

    def test_is_refused_to_staff_without_the_view_permission(self, login, book):
        nobody = make_staff()

        assert login(nobody).get(DASHBOARD).status_code == 403
        assert login(nobody).get(f"{DASHBOARD}accounts/DOOMED/").status_code == 403

    def test_an_api_token_does_not_open_it(self, engine, book):
        assert engine.get(DASHBOARD).status_code == 302

    def test_reads_a_fixed_number_of_queries_however_many_accounts(self, login, risk_officer, book):
        client = login(risk_officer)
        client.get(DASHBOARD)
        with CaptureQueriesContext(connection) as few:
            client.get(DASHBOARD)
        for n in range(8):
            account = make_account()
            make_margin_state(account, equity=str(100 + n), maintenance="100")
            make_position(book, account=account, liquidation_price="46000")
        with CaptureQueriesContext(connection) as many:
            client.get(DASHBOARD)

        assert len(many) == len(few)

    def test_the_liquidation_list_links_to_it(self, login, risk_officer, book):
        page = login(risk_officer).get("/admin/trading_risk/liquidation/")

        assert page.status_code == 200
        assert f'href="{DASHBOARD}"' in page.content.decode()

    def test_a_top_up_is_requested_for_someone_else_to_approve(self, login, risk_officer, book):
        response = login(risk_officer).post(
            f"{DASHBOARD}insurance-fund/adjust/",
            {"asset": "usdt", "kind": "TOP_UP", "amount": "250", "reason": "refill"},
        )

        change = ChangeRequest.objects.get(action="insurance_fund.adjust", status="PENDING")
        assert response.status_code == 302
        assert change.payload == {"asset": "USDT", "kind": "TOP_UP", "amount": "250.000000000000000000"}
        assert InsuranceFundEntry.objects.filter(kind="TOP_UP").count() == 1

    def test_an_auditor_cannot_request_a_top_up(self, login, auditor, book):
        login(auditor).post(
            f"{DASHBOARD}insurance-fund/adjust/", {"asset": "USDT", "kind": "TOP_UP", "amount": "1", "reason": "x"}
        )

        assert not ChangeRequest.objects.filter(action="insurance_fund.adjust", status="PENDING").exists()


class TestAccountPage:
    def test_shows_the_tier_margins_and_each_positions_formula_numbers(self, login, risk_officer, book):
        page = login(risk_officer).get(f"{DASHBOARD}accounts/DOOMED/")

        assert page.status_code == 200
        html = page.content.decode()
        state = html.split('id="margin-state"')[1].split("</table>")[0]
        assert "90.00" in state
        assert "100.00" in state
        assert "150.00" in state
        assert "0.9000" in state
        positions = html.split('id="positions"')[1].split("</table>")[0]
        # EP 50,000, IMR 10 %, MMR 0.4 %: simplified LP 45,200, BP 45,000, 10x, at mark 45,000 uPnL −5,000.
        for number in ("45200.00", "45000.00", "10.00", "-5000.00", "180.00", "4500.00", "0.052"):
            assert number in positions, number
        assert "L0" in html.split('id="account-liquidations"')[1]

    def test_a_counterparty_sees_its_deleveraging(self, login, risk_officer, book):
        html = login(risk_officer).get(f"{DASHBOARD}accounts/WINNER/").content.decode()

        adl = html.split('id="account-adl"')[1].split("</table>")[0]
        assert "BTCUSDT-PERP" in adl
        assert "Never." not in adl

    def test_an_unknown_account_is_a_404(self, login, risk_officer, db):
        assert login(risk_officer).get(f"{DASHBOARD}accounts/NOPE/").status_code == 404
