import pytest

from accounts import locks, restrictions
from accounts.models import CustomerLock, Notification
from backoffice import approvals
from backoffice.audit import Actor
from backoffice.models import ChangeRequest, OperationsLogEntry
from tests.factories import NOW, make_account, make_customer

SYSTEM = Actor.system("tests")


def lock(customer):
    return locks.lock_customer(customer=customer, rule="staff", reason="suspected takeover", actor=SYSTEM, now=NOW)


def verify(the_lock, officer, *kinds):
    for kind in kinds:
        the_lock = locks.record_unlock_verification(lock=the_lock, kind=kind, actor=Actor.staff(officer), now=NOW)
    return the_lock


class TestLockCustomer:
    def test_locks_every_account_at_once_and_tells_the_customer(self, db):
        account = make_account()

        lock(account.customer)

        state = restrictions.account_state(account, now=NOW)
        assert (state["can_trade"], state["can_withdraw"]) == (False, False)
        assert sorted(Notification.objects.values_list("channel", "template_code")) == [
            ("EMAIL", "account_locked"),
            ("SMS", "account_locked"),
        ]
        assert OperationsLogEntry.objects.filter(action="customer.lock").exists()

    def test_locking_a_locked_customer_changes_nothing(self, db):
        customer = make_customer()

        first, second = lock(customer), lock(customer)

        assert first == second
        assert CustomerLock.objects.count() == 1


class TestUnlock:
    @pytest.mark.parametrize(("kyc_level", "needed"), [(2, ("sms", "email")), (3, ("sms", "email", "face"))])
    def test_needs_sms_and_email_and_face_from_kyc_level_3(self, db, kyc_level, needed):
        customer = make_customer(kyc_level=kyc_level)

        assert locks.required_verifications(customer, now=NOW) == needed

    def test_refuses_to_request_an_unlock_before_the_verifications(self, db, risk_officer):
        the_lock = verify(lock(make_customer(kyc_level=3)), risk_officer, "sms", "email")

        with pytest.raises(locks.VerificationsMissing, match="face"):
            locks.request_unlock(lock=the_lock, actor=Actor.staff(risk_officer), reason="verified", now=NOW)

    def test_an_approved_unlock_lifts_the_lock_and_forces_a_password_change(
        self, db, risk_officer, second_risk_officer
    ):
        account = make_account()
        the_lock = verify(lock(account.customer), risk_officer, "sms", "email")
        change = locks.request_unlock(lock=the_lock, actor=Actor.staff(risk_officer), reason="verified", now=NOW)
        still_locked = restrictions.account_state(account, now=NOW)["can_trade"] is False

        approvals.approve_change(change_request=change, actor=Actor.staff(second_risk_officer), reason="ok", now=NOW)

        the_lock.refresh_from_db()
        account.customer.refresh_from_db()
        state = restrictions.account_state(account, now=NOW)
        assert still_locked
        assert the_lock.unlocked_at == NOW
        assert (state["can_trade"], state["must_change_password"]) == (True, True)
        assert Notification.objects.filter(template_code="account_unlocked").count() == 2

    def test_the_officer_who_requested_the_unlock_cannot_approve_it(self, db, risk_officer):
        the_lock = verify(lock(make_customer()), risk_officer, "sms", "email")
        change = locks.request_unlock(lock=the_lock, actor=Actor.staff(risk_officer), reason="verified", now=NOW)

        with pytest.raises(approvals.SelfApproval):
            approvals.approve_change(change_request=change, actor=Actor.staff(risk_officer), reason="", now=NOW)

        assert change.status == ChangeRequest.Status.PENDING

    def test_a_second_request_while_one_is_pending_is_refused(self, db, risk_officer):
        the_lock = verify(lock(make_customer()), risk_officer, "sms", "email")
        locks.request_unlock(lock=the_lock, actor=Actor.staff(risk_officer), reason="verified", now=NOW)

        with pytest.raises(locks.UnlockPending):
            locks.request_unlock(lock=the_lock, actor=Actor.staff(risk_officer), reason="again", now=NOW)

    def test_every_step_is_in_the_operations_log(self, db, risk_officer, second_risk_officer):
        the_lock = verify(lock(make_customer()), risk_officer, "sms", "email")
        change = locks.request_unlock(lock=the_lock, actor=Actor.staff(risk_officer), reason="verified", now=NOW)
        approvals.approve_change(change_request=change, actor=Actor.staff(second_risk_officer), reason="ok", now=NOW)

        logged = set(OperationsLogEntry.objects.values_list("action", flat=True))

        assert {
            "customer.lock",
            "restriction.add",
            "customer.unlock_verification",
            "change_request.open",
            "change_request.approve",
            "customer.unlock",
            "restriction.lift",
        } <= logged
