import pytest

from backoffice import approvals
from backoffice.audit import Actor
from backoffice.models import ChangeRequest
from tests import factories
from tests.withdrawals.conftest import REQUESTED_AT, make_withdrawal
from withdrawals import services
from withdrawals.models import AssetNetwork, ManualConfirmation, Withdrawal

pytestmark = pytest.mark.usefixtures("prices")


def request(action, payload, user, reason="mainnet upgrade"):
    return approvals.request_change(
        action=action, payload=payload, actor=Actor.staff(user), reason=reason, now=factories.NOW
    )


def approve(change, user):
    return approvals.approve_change(change_request=change, actor=Actor.staff(user), reason="agreed", now=factories.NOW)


class TestAssetSuspension:
    def test_a_suspension_takes_effect_only_when_someone_else_approves(self, risk_officer, second_risk_officer):
        change = request(
            "withdrawal.asset_suspension",
            {"asset": "BTC", "network": "BTC", "direction": "WITHDRAWALS", "suspend": True},
            risk_officer,
        )
        assert not AssetNetwork.objects.get(asset="BTC", network="BTC").withdrawals_suspended
        with pytest.raises(approvals.SelfApproval):
            approve(change, risk_officer)

        approve(change, second_risk_officer)

        btc = AssetNetwork.objects.get(asset="BTC", network="BTC")
        assert btc.withdrawals_suspended
        assert btc.suspension_reason == "mainnet upgrade"

    def test_a_suspended_asset_holds_every_withdrawal_and_resuming_sends_them_to_review(
        self, verified_account, risk_officer, second_risk_officer
    ):
        payload = {"asset": "BTC", "network": "BTC", "direction": "WITHDRAWALS"}
        approve(request("withdrawal.asset_suspension", {**payload, "suspend": True}, risk_officer), second_risk_officer)

        held = make_withdrawal(verified_account, amount="0.01")
        assert (held.status, held.reasons, held.hold_until) == (Withdrawal.Status.HELD, ["asset_suspended"], None)

        resume = request("withdrawal.asset_suspension", {**payload, "suspend": False}, risk_officer)
        approve(resume, second_risk_officer)
        held.refresh_from_db()
        assert held.status == Withdrawal.Status.PENDING_REVIEW

    def test_a_large_hold_ending_during_a_suspension_stays_held_and_nothing_is_paid(
        self, risk_officer, second_risk_officer
    ):
        account = factories.make_account(customer=factories.make_customer(kyc_level=3))
        large = make_withdrawal(account, amount="1500")
        payload = {"asset": "BTC", "network": "BTC", "direction": "WITHDRAWALS"}
        approve(request("withdrawal.asset_suspension", {**payload, "suspend": True}, risk_officer), second_risk_officer)

        services.release_due_holds(now=large.hold_until)

        large.refresh_from_db()
        assert large.status == Withdrawal.Status.HELD
        resume = request("withdrawal.asset_suspension", {**payload, "suspend": False}, risk_officer)
        approve(resume, second_risk_officer)
        large.refresh_from_db()
        assert large.status == Withdrawal.Status.HELD  # its own 24 h hold is still running
        assert services.release_due_holds(now=large.hold_until) == 1

    def test_deposits_are_suspended_separately(self, risk_officer, second_risk_officer):
        approve(
            request(
                "withdrawal.asset_suspension",
                {"asset": "USDT", "network": "TRX", "direction": "DEPOSITS", "suspend": True},
                risk_officer,
                "double spend",
            ),
            second_risk_officer,
        )

        usdt = AssetNetwork.objects.get(asset="USDT", network="TRX")
        assert usdt.deposits_suspended
        assert not usdt.withdrawals_suspended


class TestManualSwitch:
    def test_during_an_incident_nothing_is_approved_automatically(
        self, verified_account, risk_officer, second_risk_officer
    ):
        approve(
            request("withdrawal.manual_confirmation", {"on": True}, risk_officer, "hot wallet incident"),
            second_risk_officer,
        )

        withdrawal = make_withdrawal(verified_account, amount="0.01")

        assert withdrawal.status == Withdrawal.Status.PENDING_REVIEW
        assert "manual_confirmation" in [r["rule"] for r in withdrawal.rules]

    def test_switching_back_restores_automatic_approval(self, verified_account, risk_officer, second_risk_officer):
        approve(request("withdrawal.manual_confirmation", {"on": True}, risk_officer), second_risk_officer)
        approve(request("withdrawal.manual_confirmation", {"on": False}, risk_officer), second_risk_officer)

        withdrawal = make_withdrawal(verified_account, amount="0.01")

        assert withdrawal.status == Withdrawal.Status.APPROVED
        assert ManualConfirmation.objects.get().ended_at == factories.NOW


class TestNetworkFees:
    def test_a_small_fee_change_needs_one_approver(self, risk_officer, second_risk_officer):
        btc = AssetNetwork.objects.get(asset="BTC", network="BTC")
        btc.network_fee = 100
        btc.save()
        change = request("withdrawal.network_fee", {"asset": "BTC", "network": "BTC", "fee": "120"}, risk_officer)

        approve(change, second_risk_officer)

        assert change.required_approvals == 1
        assert AssetNetwork.objects.get(pk=btc.pk).network_fee == 120

    def test_a_large_fee_change_needs_a_second_approver(self, risk_officer, second_risk_officer):
        change = request("withdrawal.network_fee", {"asset": "BTC", "network": "BTC", "fee": "0.0005"}, risk_officer)
        approve(change, second_risk_officer)
        change.refresh_from_db()
        assert change.status == ChangeRequest.Status.PENDING

        approve(change, factories.make_staff(roles=("risk officer",)))

        change.refresh_from_db()
        assert change.status == ChangeRequest.Status.APPLIED
        assert str(AssetNetwork.objects.get(asset="BTC", network="BTC").network_fee.normalize()) == "0.0005"

    def test_a_fee_finer_than_the_asset_is_refused(self, risk_officer):
        with pytest.raises(approvals.InvalidInput):
            request("withdrawal.network_fee", {"asset": "BTC", "network": "BTC", "fee": "0.000000001"}, risk_officer)


def test_a_held_withdrawal_past_its_hold_is_moved_by_the_task(db, prices):
    from withdrawals import tasks

    account = factories.make_account(customer=factories.make_customer(kyc_level=3))
    withdrawal = make_withdrawal(account, amount="1500")

    tasks.release_due_holds.delay()  # now is long after REQUESTED_AT + 24 h

    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING_REVIEW
    assert withdrawal.hold_until > REQUESTED_AT


def test_the_engine_reads_suspensions_and_precision(engine, risk_officer, second_risk_officer):
    approve(
        request(
            "withdrawal.asset_suspension",
            {"asset": "USDT", "network": "TRX", "direction": "DEPOSITS", "suspend": True},
            risk_officer,
            "settlement anomaly",
        ),
        second_risk_officer,
    )

    rows = {(r["asset"], r["network"]): r for r in engine.get("/api/v1/withdrawal-assets").json()}

    assert rows[("USDT", "TRX")]["deposits_suspended"] is True
    assert rows[("USDT", "TRX")]["withdrawals_suspended"] is False
    assert rows[("BTC", "BTC")]["decimals"] == 8
