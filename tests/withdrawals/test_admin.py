import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from backoffice.audit import Actor
from tests import factories
from tests.withdrawals.conftest import BTC_ADDRESS, make_withdrawal
from withdrawals import wallets
from withdrawals.models import AssetNetwork, Wallet, Withdrawal

pytestmark = pytest.mark.usefixtures("prices")
TRAVEL_RULE_FIXTURES = Path(__file__).resolve().parents[3] / "shared/reference/travel-rule/trisa-fixtures"


class TestReviewQueue:
    def test_the_queue_lists_held_pending_and_frozen_withdrawals(
        self, login, risk_officer, verified_account, django_assert_max_num_queries
    ):
        pending = make_withdrawal(verified_account, amount="3")
        approved = make_withdrawal(verified_account, amount="0.01")

        client = login(risk_officer)
        client.get("/admin/withdrawals/withdrawal/")  # warm the session and permission caches

        with django_assert_max_num_queries(12):
            page = client.get("/admin/withdrawals/withdrawal/")

        assert page.status_code == 200
        assert pending.request_id in page.text
        assert approved.request_id not in page.text
        assert approved.request_id in client.get("/admin/withdrawals/withdrawal/?queue=all").text

    def test_the_review_page_shows_what_a_reviewer_needs(self, login, risk_officer, verified_account):
        make_withdrawal(verified_account, amount="0.01", request_id="earlier")
        withdrawal = make_withdrawal(verified_account, amount="3")

        page = login(risk_officer).get(f"/admin/withdrawals/withdrawal/{withdrawal.pk}/change/")

        assert page.status_code == 200
        for needed in (
            "Rules that fired",
            "approval_tier",
            "risk picture",
            "Address screening",
            "Travel-rule data",
            "earlier",
            "KYC level",
        ):
            assert needed in page.text
        assert f"<strong>{withdrawal.screening['result']}</strong>" in page.text

    def test_approving_needs_a_reason_and_then_approves(self, login, risk_officer, verified_account):
        withdrawal = make_withdrawal(verified_account, amount="3")
        client = login(risk_officer)
        url = f"/admin/withdrawals/withdrawal/{withdrawal.pk}/change/"

        client.post(url, {"action": "approve", "reason": ""})
        withdrawal.refresh_from_db()
        assert withdrawal.status == Withdrawal.Status.PENDING_REVIEW
        client.post(url, {"action": "approve", "reason": "customer called, known destination"})

        withdrawal.refresh_from_db()
        assert withdrawal.status in (Withdrawal.Status.APPROVED, Withdrawal.Status.SENT)

    def test_rejecting_with_a_reason_rejects(self, login, risk_officer, verified_account):
        withdrawal = make_withdrawal(verified_account, amount="3")

        login(risk_officer).post(
            f"/admin/withdrawals/withdrawal/{withdrawal.pk}/change/",
            {"action": "reject", "reason": "destination linked to a mixer"},
        )

        withdrawal.refresh_from_db()
        assert withdrawal.status == Withdrawal.Status.REJECTED


class TestWalletPages:
    def test_the_dashboard_charts_balances_against_target_and_maximum(self, login, engine):
        operator = factories.make_staff(roles=("operations",))
        wallets.register_wallet(
            name="btc-hot-1",
            asset_network=AssetNetwork.objects.get(asset="BTC", network="BTC"),
            tier=Wallet.Tier.HOT,
            address=BTC_ADDRESS,
            target_balance=Decimal(50),
            max_balance=Decimal(200),
            actor=Actor.staff(operator),
            now=factories.NOW,
        )
        from django.utils import timezone

        engine.post(
            "/api/v1/wallet-balances/",
            [{"wallet": "btc-hot-1", "balance": "40", "at": timezone.now().isoformat()}],
            format="json",
        )

        page = login(operator).get("/admin/withdrawals/wallet/dashboard/")

        assert page.status_code == 200
        assert "btc-hot-1" in page.text
        assert "<polyline" in page.text
        assert "below target" in page.text

    def test_the_controls_form_opens_a_change_request(self, login, risk_officer):
        btc = AssetNetwork.objects.get(asset="BTC", network="BTC")

        response = login(risk_officer).post(
            "/admin/withdrawals/assetnetwork/controls/",
            {
                "action": "withdrawal.asset_suspension",
                "asset_network": btc.pk,
                "direction": "WITHDRAWALS",
                "switch_on": "on",
                "reason": "settlement anomaly",
            },
        )

        assert response.status_code == 302
        btc.refresh_from_db()
        assert not btc.withdrawals_suspended  # not before someone else approves


class TestWalletSettingsPage:
    @pytest.fixture
    def operator(self, db):
        return factories.make_staff(roles=("operations",), username="opal")

    @pytest.fixture
    def hot_wallet(self, operator):
        return wallets.register_wallet(
            name="btc-hot-1",
            asset_network=AssetNetwork.objects.get(asset="BTC", network="BTC"),
            tier=Wallet.Tier.HOT,
            address=BTC_ADDRESS,
            target_balance=Decimal(50),
            max_balance=Decimal(200),
            actor=Actor.staff(operator),
            now=factories.NOW,
        )

    def url(self, wallet):
        return f"/admin/withdrawals/wallet/{wallet.pk}/settings/"

    def test_the_wallet_list_links_to_each_wallets_settings(self, login, operator, hot_wallet):
        page = login(operator).get("/admin/withdrawals/wallet/")

        assert self.url(hot_wallet) in page.text

    def test_the_band_is_changed_with_a_reason_and_shown_in_the_changes(self, login, operator, hot_wallet):
        client = login(operator)

        response = client.post(
            self.url(hot_wallet),
            {"action": "band", "band-target_balance": "80", "band-max_balance": "300", "band-reason": "busy season"},
        )

        assert response.status_code == 302
        hot_wallet.refresh_from_db()
        assert (hot_wallet.target_balance, hot_wallet.max_balance) == (Decimal(80), Decimal(300))
        page = client.get(self.url(hot_wallet))
        assert "wallet.band" in page.text
        assert "busy season" in page.text

    def test_without_a_reason_nothing_changes(self, login, operator, hot_wallet):
        response = login(operator).post(
            self.url(hot_wallet),
            {"action": "band", "band-target_balance": "80", "band-max_balance": "300", "band-reason": ""},
        )

        assert response.status_code == 200
        hot_wallet.refresh_from_db()
        assert hot_wallet.target_balance == Decimal(50)

    def test_a_target_above_the_maximum_is_shown_as_an_error(self, login, operator, hot_wallet):
        response = login(operator).post(
            self.url(hot_wallet),
            {"action": "band", "band-target_balance": "500", "band-max_balance": "300", "band-reason": "typo"},
        )

        assert "Need 0 ≤ target ≤ maximum." in response.text
        hot_wallet.refresh_from_db()
        assert hot_wallet.max_balance == Decimal(200)

    def test_the_wallet_is_deactivated_and_reactivated(self, login, operator, hot_wallet):
        client = login(operator)

        client.post(self.url(hot_wallet), {"action": "active", "active-reason": "address rotated"})
        hot_wallet.refresh_from_db()
        assert not hot_wallet.active
        assert "Reactivate the wallet" in client.get(self.url(hot_wallet)).text

        client.post(self.url(hot_wallet), {"action": "active", "active-reason": "rotation undone"})
        hot_wallet.refresh_from_db()
        assert hot_wallet.active

    def test_staff_without_wallet_rights_change_nothing(self, login, risk_officer, hot_wallet):
        response = login(risk_officer).post(
            self.url(hot_wallet),
            {"action": "band", "band-target_balance": "80", "band-max_balance": "300", "band-reason": "why not"},
        )

        assert "manage_wallet" in response.text
        hot_wallet.refresh_from_db()
        assert hot_wallet.target_balance == Decimal(50)

    def test_the_dashboard_draws_the_target_as_it_stood_at_each_balance(self, login, operator, hot_wallet):
        now = timezone.now()
        wallets.record_balances(
            items=[wallets.BalanceIn(wallet="btc-hot-1", balance=Decimal(60), at=now - timedelta(days=2))],
            actor=factories.SYSTEM,
            now=now,
        )
        wallets.change_band(
            wallet=hot_wallet,
            target_balance=Decimal(100),
            max_balance=Decimal(200),
            reason="busy season",
            actor=Actor.staff(operator),
            now=now,
        )
        wallets.record_balances(
            items=[wallets.BalanceIn(wallet="btc-hot-1", balance=Decimal(90), at=now - timedelta(days=1))],
            actor=factories.SYSTEM,
            now=now,
        )

        page = login(operator).get("/admin/withdrawals/wallet/dashboard/?days=7")

        target_line = re.search(r'class="target-line" points="([^"]+)"', page.text).group(1)
        levels = {float(point.split(",")[1]) for point in target_line.split()}
        assert levels == {60.0, 40.0}  # 50 then 100 of a 200 maximum, on an 80-pixel-high chart
        assert "Last 7 days, 2 snapshot(s): 1 below target, 0 above maximum, band changed 1 time(s)" in page.text

    def test_a_deactivated_wallet_leaves_the_dashboard(self, login, operator, hot_wallet):
        wallets.set_active(
            wallet=hot_wallet, active=False, reason="retired", actor=Actor.staff(operator), now=factories.NOW
        )

        page = login(operator).get("/admin/withdrawals/wallet/dashboard/")

        assert "btc-hot-1" not in page.text


@pytest.mark.usefixtures("prices")
class TestReviewPageTravelRule:
    def test_the_review_page_names_the_parties_and_the_intermediary_vasps(self, login, risk_officer, verified_account):
        data = json.loads((TRAVEL_RULE_FIXTURES / "ivms101/identity_payload.json").read_text())
        data["transferPath"] = {
            "transferPath": [
                {
                    "intermediaryVASP": {
                        "legalPerson": {
                            "name": {
                                "nameIdentifier": [
                                    {"legalPersonName": "Relay VASP E", "legalPersonNameIdentifierType": "LEGL"}
                                ]
                            }
                        }
                    },
                    "sequence": 0,
                }
            ]
        }
        withdrawal = make_withdrawal(verified_account, amount="3", travel_rule=data)

        page = login(risk_officer).get(f"/admin/withdrawals/withdrawal/{withdrawal.pk}/change/")

        for needed in ("Jane Howard", "AliceCoin, Inc.", "Bob&#x27;s Discount VASP, PLC", "0. Relay VASP E"):
            assert needed in page.text

    def test_a_reviewer_attaches_travel_rule_data_on_the_page(self, login, risk_officer, verified_account):
        withdrawal = make_withdrawal(verified_account, amount="3")
        data = (TRAVEL_RULE_FIXTURES / "ivms101/identity_payload.json").read_text()
        client = login(risk_officer)
        url = f"/admin/withdrawals/withdrawal/{withdrawal.pk}/change/"

        client.post(url, {"action": "travel_rule", "travel_rule": data})

        withdrawal.refresh_from_db()
        assert withdrawal.travel_rule["originator"]["originatorPersons"]
        assert withdrawal.last_changed_by == risk_officer
        assert "Jane Howard" in client.get(url).text

    @pytest.mark.parametrize(
        ("text", "shown"),
        [
            ("{not json", "Not JSON"),
            ("[1, 2]", "a JSON object"),
            ('{"originator": {"originatorPersons": []}, "beneficiary": {"beneficiaryPersons": []}}', "IVMS101"),
        ],
    )
    def test_travel_rule_data_that_is_not_ivms101_is_refused_with_the_reason(
        self, login, risk_officer, verified_account, text, shown
    ):
        withdrawal = make_withdrawal(verified_account, amount="3")
        client = login(risk_officer)
        url = f"/admin/withdrawals/withdrawal/{withdrawal.pk}/change/"

        page = client.post(url, {"action": "travel_rule", "travel_rule": text}, follow=True)

        assert shown in page.text
        withdrawal.refresh_from_db()
        assert withdrawal.travel_rule is None
