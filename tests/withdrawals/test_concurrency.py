import threading
import time

import pytest
from django.db import connection

from backoffice.audit import Actor
from backoffice.errors import DomainError
from backoffice.models import OperationsLogEntry
from tests import factories
from tests.withdrawals.conftest import REQUESTED_AT, make_withdrawal
from withdrawals import services
from withdrawals.models import Payout, Withdrawal, WithdrawalApproval


def _run_together(jobs) -> list[BaseException]:
    """Start every job at once on its own thread (and database connection); return unexpected errors."""
    barrier, errors = threading.Barrier(len(jobs)), []

    def run(job):
        try:
            barrier.wait()
            job()
        except DomainError:
            pass  # refused as it should be (already approved, not pending …)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def _approver(withdrawal, user):
    return lambda: services.approve_withdrawal(
        withdrawal=withdrawal, actor=Actor.staff(user), reason="ok", now=REQUESTED_AT
    )


def _payout_worker(withdrawal):
    def work():
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            services.pay_out(withdrawal_id=withdrawal.pk, now=REQUESTED_AT)
            if Withdrawal.objects.filter(pk=withdrawal.pk, status=Withdrawal.Status.SENT).exists():
                return
            time.sleep(0.002)

    return work


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("prices")
class TestConcurrentApprovalAndPayout:
    def test_many_approvers_and_payout_workers_pay_each_withdrawal_once_and_record_each_approval_once(self):
        account = factories.make_account(customer=factories.make_customer(kyc_level=2))
        withdrawals = [make_withdrawal(account, amount="3") for _ in range(8)]  # one approver each
        approvers = [factories.make_staff(roles=("risk officer",)) for _ in range(4)]
        jobs = [
            job
            for w in withdrawals
            for job in [_approver(w, user) for user in approvers] + [_payout_worker(w) for _ in range(2)]
        ]

        errors = _run_together(jobs)

        assert errors == []
        for w in withdrawals:
            w.refresh_from_db()
            assert w.status == Withdrawal.Status.SENT
            assert WithdrawalApproval.objects.filter(withdrawal=w).count() == w.required_approvals == 1
            assert Payout.objects.filter(withdrawal=w).count() == 1
            target = {"target_type": "withdrawals.withdrawal", "target_id": str(w.pk)}
            assert OperationsLogEntry.objects.filter(action="withdrawal.approved", **target).count() == 1
            assert OperationsLogEntry.objects.filter(action="withdrawal.pay_out", **target).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.usefixtures("prices")
class TestConcurrentSameRequest:
    def test_the_same_request_sent_many_times_at_once_is_stored_once_with_one_answer(self):
        account = factories.make_account(customer=factories.make_customer(kyc_level=2))
        answers = []

        def send():
            answers.append(make_withdrawal(account, amount="0.01", request_id="same").pk)

        errors = _run_together([send] * 6)

        assert errors == []
        assert len(set(answers)) == 1
        assert Withdrawal.objects.filter(request_id="same").count() == 1
