import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from backoffice import approvals
from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from backoffice.models import ChangeApproval, ChangeRequest, OperationsLogEntry
from backoffice.parameters import param
from tests.factories import NOW, make_staff

TWO_APPROVERS = "test.two_approvers"
APPLIED: list[dict] = []


def _apply(*, payload, change_request, actor, now):
    APPLIED.append(payload)
    return {"applied": payload["n"]}


approvals.register(
    approvals.ChangeAction(
        code=TWO_APPROVERS,
        label="test",
        request_permission="backoffice.request_change",
        approve_permission="backoffice.approve_parameter_change",
        validate=lambda p: p,
        apply=_apply,
        describe=lambda p: f"test {p['n']}",
        approvals_needed=lambda p: 2 if p["n"] > 100 else 1,
    )
)


@pytest.fixture(autouse=True)
def _reset_applied():
    APPLIED.clear()


def request(actor_user, n=1, *, now=NOW, action=TWO_APPROVERS):
    return approvals.request_change(
        action=action, payload={"n": n}, actor=Actor.staff(actor_user), reason="because", now=now
    )


def approve(change, user, *, now=NOW):
    return approvals.approve_change(change_request=change, actor=Actor.staff(user), reason="fine", now=now)


class TestRequestChange:
    def test_changes_nothing_until_approved(self, db, risk_officer):
        change = request(risk_officer)

        assert change.status == ChangeRequest.Status.PENDING
        assert APPLIED == []

    def test_needs_a_reason(self, db, risk_officer):
        with pytest.raises(InvalidInput, match="reason"):
            approvals.request_change(
                action=TWO_APPROVERS, payload={"n": 1}, actor=Actor.staff(risk_officer), reason="  ", now=NOW
            )

    def test_needs_the_permission_to_request(self, db):
        outsider = make_staff()

        with pytest.raises(approvals.NotAllowed):
            request(outsider)

    def test_expires_after_the_configured_hours(self, db, risk_officer):
        change = request(risk_officer)

        assert change.expires_at == NOW + timedelta(hours=param("maker_checker.request_expiry_hours"))


class TestApproveChange:
    def test_applies_the_change_when_another_person_approves(self, db, risk_officer, second_risk_officer):
        change = request(risk_officer, 7)

        change = approve(change, second_risk_officer)

        assert change.status == ChangeRequest.Status.APPLIED
        assert change.result == {"applied": 7}
        assert APPLIED == [{"n": 7}]

    def test_refuses_the_requester_as_approver(self, db, risk_officer):
        change = request(risk_officer)

        with pytest.raises(approvals.SelfApproval):
            approve(change, risk_officer)

        assert APPLIED == []

    def test_refuses_an_approver_without_the_permission(self, db, risk_officer, auditor):
        change = request(risk_officer)

        with pytest.raises(approvals.NotAllowed):
            approve(change, auditor)

    def test_a_large_change_needs_two_different_approvers(self, db, risk_officer, second_risk_officer):
        third = make_staff(roles=("risk officer",))
        change = request(risk_officer, 500)

        after_one = approve(change, second_risk_officer)
        with pytest.raises(approvals.AlreadyApproved):
            approve(change, second_risk_officer)
        after_two = approve(change, third)

        assert after_one.status == ChangeRequest.Status.PENDING
        assert after_two.status == ChangeRequest.Status.APPLIED
        assert APPLIED == [{"n": 500}]

    def test_refuses_an_expired_request(self, db, risk_officer, second_risk_officer):
        change = request(risk_officer)

        with pytest.raises(approvals.Expired):
            approve(change, second_risk_officer, now=change.expires_at)

    def test_refuses_a_decided_request(self, db, risk_officer, second_risk_officer):
        change = request(risk_officer)
        approvals.reject_change(change_request=change, actor=Actor.staff(second_risk_officer), reason="no", now=NOW)

        with pytest.raises(approvals.AlreadyDecided):
            approve(change, make_staff(roles=("risk officer",)))

    def test_writes_request_approval_and_application_to_the_operations_log(self, db, risk_officer, second_risk_officer):
        change = approve(request(risk_officer), second_risk_officer)

        actions = list(
            OperationsLogEntry.objects.filter(target_id=str(change.pk)).order_by("id").values_list("action", "actor")
        )
        assert actions == [
            ("change_request.open", "rita"),
            ("change_request.approve", "raj"),
            ("change_request.apply", "raj"),
        ]


class TestFourEyesInTheDatabase:
    def test_refuses_an_approval_row_by_the_requester(self, db, risk_officer):
        change = request(risk_officer)

        with pytest.raises(IntegrityError, match="change_approval_four_eyes"), transaction.atomic():
            ChangeApproval.objects.create(
                change_request=change,
                requested_by=risk_officer,
                approver=risk_officer,
                decision="APPROVE",
                decided_at=NOW,
            )

    def test_refuses_an_approval_row_that_misstates_the_requester(self, db, risk_officer, second_risk_officer):
        change = request(risk_officer)

        with pytest.raises(IntegrityError, match="change_approval_requester_matches"), transaction.atomic():
            ChangeApproval.objects.create(
                change_request=change,
                requested_by=second_risk_officer,
                approver=risk_officer,
                decision="APPROVE",
                decided_at=NOW,
            )


class TestRejectAndCancel:
    def test_a_rejection_needs_a_reason_and_closes_the_request(self, db, risk_officer, second_risk_officer):
        change = request(risk_officer)

        with pytest.raises(InvalidInput):
            approvals.reject_change(change_request=change, actor=Actor.staff(second_risk_officer), reason="", now=NOW)
        change = approvals.reject_change(
            change_request=change, actor=Actor.staff(second_risk_officer), reason="too risky", now=NOW
        )

        assert change.status == ChangeRequest.Status.REJECTED
        assert APPLIED == []

    def test_only_the_requester_can_cancel(self, db, risk_officer, second_risk_officer):
        change = request(risk_officer)

        with pytest.raises(approvals.NotAllowed):
            approvals.cancel_change(change_request=change, actor=Actor.staff(second_risk_officer), now=NOW)
        change = approvals.cancel_change(change_request=change, actor=Actor.staff(risk_officer), now=NOW)

        assert change.status == ChangeRequest.Status.CANCELLED


class TestExpireChangeRequests:
    def test_expires_only_requests_past_their_expiry(self, db, risk_officer):
        old = request(risk_officer, now=NOW - timedelta(days=10))
        fresh = request(risk_officer)

        expired = approvals.expire_change_requests(now=NOW)

        old.refresh_from_db()
        fresh.refresh_from_db()
        assert expired == 1
        assert (old.status, fresh.status) == (ChangeRequest.Status.EXPIRED, ChangeRequest.Status.PENDING)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentApprovals:
    def test_applies_a_change_once_when_many_approvers_race(self):
        requester = make_staff(roles=("risk officer",))
        approvers = [make_staff(roles=("risk officer",)) for _ in range(6)]
        change = request(requester, 5)
        outcomes = []

        def try_approve(user):
            try:
                approve(change, user)
                outcomes.append("approved")
            except approvals.AlreadyDecided:
                outcomes.append("too late")
            finally:
                connection.close()

        threads = [threading.Thread(target=try_approve, args=(u,)) for u in approvers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert APPLIED == [{"n": 5}]
        assert outcomes.count("approved") == 1
        assert ChangeApproval.objects.filter(change_request=change).count() == 1
