from decimal import Decimal

import pytest

from backoffice.audit import Actor
from tests import factories
from tests.withdrawals.conftest import BTC_ADDRESS, make_withdrawal
from withdrawals import wallets
from withdrawals.models import AssetNetwork, Wallet, Withdrawal

pytestmark = pytest.mark.usefixtures("prices")


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
