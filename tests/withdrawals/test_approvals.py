from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from backoffice.audit import Actor
from backoffice.models import OperationsLogEntry
from tests import factories
from tests.withdrawals.conftest import REQUESTED_AT, make_withdrawal
from withdrawals import services
from withdrawals.models import Withdrawal, WithdrawalApproval

pytestmark = pytest.mark.usefixtures("prices")


@pytest.fixture
def rich_account(db):
    return factories.make_account(customer=factories.make_customer(kyc_level=3))


def approve(withdrawal, user, reason="checked"):
    return services.approve_withdrawal(withdrawal=withdrawal, actor=Actor.staff(user), reason=reason, now=REQUESTED_AT)


class TestTiers:
    def test_within_the_automatic_limit_no_person_is_needed(self, verified_account):
        withdrawal = make_withdrawal(verified_account, amount="0.01")

        assert (withdrawal.status, withdrawal.required_approvals) == (Withdrawal.Status.APPROVED, 0)

    def test_above_the_automatic_limit_one_approver_approves(self, verified_account, risk_officer):
        withdrawal = make_withdrawal(verified_account, amount="3")

        approve(withdrawal, risk_officer)

        withdrawal.refresh_from_db()
        assert (withdrawal.required_approvals, withdrawal.status) == (1, Withdrawal.Status.APPROVED)

    def test_above_the_large_tier_two_different_approvers_are_needed(
        self, rich_account, risk_officer, second_risk_officer
    ):
        withdrawal = make_withdrawal(rich_account, amount="1200")
        services.release_due_holds(now=withdrawal.hold_until)
        caller = factories.make_staff(roles=("risk officer",))
        services.record_identity_confirmation(
            withdrawal=withdrawal, method="PHONE", note="called back", actor=Actor.staff(caller), now=REQUESTED_AT
        )

        approve(withdrawal, risk_officer)
        withdrawal.refresh_from_db()
        assert withdrawal.status == Withdrawal.Status.PENDING_REVIEW
        approve(withdrawal, second_risk_officer)

        withdrawal.refresh_from_db()
        assert (withdrawal.required_approvals, withdrawal.status) == (2, Withdrawal.Status.APPROVED)

    def test_a_large_withdrawal_needs_identity_confirmation_first(self, rich_account, risk_officer):
        withdrawal = make_withdrawal(rich_account, amount="1200")
        services.release_due_holds(now=withdrawal.hold_until)

        with pytest.raises(services.IdentityNotConfirmed):
            approve(withdrawal, risk_officer)

    def test_a_held_withdrawal_cannot_be_approved_before_its_hold_ends(self, rich_account, risk_officer):
        withdrawal = make_withdrawal(rich_account, amount="1200")

        with pytest.raises(services.NotReviewable):
            approve(withdrawal, risk_officer)


class TestFourEyes:
    def test_nobody_approves_twice(self, rich_account, risk_officer):
        withdrawal = make_withdrawal(rich_account, amount="1200")
        services.release_due_holds(now=withdrawal.hold_until)
        services.record_identity_confirmation(
            withdrawal=withdrawal,
            method="FACE",
            note="video call",
            actor=Actor.staff(factories.make_staff(roles=("risk officer",))),
            now=REQUESTED_AT,
        )
        approve(withdrawal, risk_officer)

        with pytest.raises(services.AlreadyApproved):
            approve(withdrawal, risk_officer)

    def test_whoever_changed_the_request_cannot_approve_it(self, verified_account, risk_officer):
        withdrawal = make_withdrawal(verified_account, amount="3")
        services.record_identity_confirmation(
            withdrawal=withdrawal, method="PHONE", note="called", actor=Actor.staff(risk_officer), now=REQUESTED_AT
        )

        with pytest.raises(services.SelfApproval):
            approve(withdrawal, risk_officer)

    def test_whoever_attached_travel_rule_data_cannot_approve(
        self, verified_account, risk_officer, second_risk_officer
    ):
        import json
        from pathlib import Path

        fixtures = Path(__file__).resolve().parents[3] / "shared/reference/travel-rule/trisa-fixtures"
        payload = json.loads((fixtures / "ivms101/identity_payload.json").read_text())
        withdrawal = make_withdrawal(verified_account, amount="3")

        services.attach_travel_rule(
            withdrawal=withdrawal, data=payload, actor=Actor.staff(risk_officer), now=REQUESTED_AT
        )

        with pytest.raises(services.SelfApproval):
            approve(withdrawal, risk_officer)
        approve(withdrawal, second_risk_officer)
        withdrawal.refresh_from_db()
        assert withdrawal.travel_rule["originator"]["originatorPersons"]
        assert withdrawal.status == Withdrawal.Status.APPROVED

    def test_the_database_refuses_an_approval_by_the_last_changer(self, verified_account, risk_officer):
        withdrawal = make_withdrawal(verified_account, amount="3")

        with pytest.raises(IntegrityError), transaction.atomic():
            WithdrawalApproval.objects.create(
                withdrawal=withdrawal,
                approver=risk_officer,
                changed_by=risk_officer,
                reason="x",
                approved_at=REQUESTED_AT,
            )

    def test_the_database_refuses_a_second_approval_by_the_same_person(self, verified_account, risk_officer):
        withdrawal = make_withdrawal(verified_account, amount="3")
        WithdrawalApproval.objects.create(
            withdrawal=withdrawal, approver=risk_officer, reason="x", approved_at=REQUESTED_AT
        )

        with pytest.raises(IntegrityError), transaction.atomic():
            WithdrawalApproval.objects.create(
                withdrawal=withdrawal, approver=risk_officer, reason="y", approved_at=REQUESTED_AT
            )

    def test_staff_without_the_review_permission_cannot_approve(self, verified_account, auditor):
        withdrawal = make_withdrawal(verified_account, amount="3")

        with pytest.raises(services.NotAllowed):
            approve(withdrawal, auditor)

    def test_a_reason_is_required(self, verified_account, risk_officer):
        withdrawal = make_withdrawal(verified_account, amount="3")

        with pytest.raises(services.InvalidInput):
            approve(withdrawal, risk_officer, reason=" ")


class TestRejectAndPayout:
    def test_one_rejection_with_a_reason_closes_it_and_is_logged(self, verified_account, risk_officer):
        withdrawal = make_withdrawal(verified_account, amount="3")

        services.reject_withdrawal(
            withdrawal=withdrawal, actor=Actor.staff(risk_officer), reason="mule pattern", now=REQUESTED_AT
        )

        withdrawal.refresh_from_db()
        assert withdrawal.status == Withdrawal.Status.REJECTED
        assert withdrawal.decision_reason == "mule pattern"
        assert OperationsLogEntry.objects.filter(action="withdrawal.rejected", reason="mule pattern").exists()

    def test_an_approved_withdrawal_is_paid_once_with_a_key_from_its_pk(self, verified_account):
        withdrawal = make_withdrawal(verified_account, amount="0.01")

        first = services.pay_out(withdrawal_id=withdrawal.pk, now=REQUESTED_AT)
        again = services.pay_out(withdrawal_id=withdrawal.pk, now=REQUESTED_AT)

        assert first.idempotency_key == f"withdrawal-{withdrawal.pk}"
        assert again is None
        withdrawal.refresh_from_db()
        assert withdrawal.status == Withdrawal.Status.SENT
        assert withdrawal.payout.status == "SUBMITTED"

    def test_the_sweep_pays_what_a_lost_task_did_not(self, verified_account):
        make_withdrawal(verified_account, amount="0.01")
        make_withdrawal(verified_account, amount="0.015")

        assert services.pay_out_approved(now=REQUESTED_AT) == 2
        assert services.pay_out_approved(now=REQUESTED_AT) == 0
        assert Withdrawal.objects.filter(status=Withdrawal.Status.SENT, amount__gt=Decimal(0)).count() == 2
