"""What the customer is told about a withdrawal that does not go out at once."""

from datetime import timedelta

from accounts import restrictions
from accounts.models import Notification
from tests import factories
from tests.withdrawals.conftest import REQUESTED_AT, make_withdrawal


def notices(customer):
    return sorted(Notification.objects.filter(customer=customer).values_list("template_code", "channel"))


class TestCustomerNotices:
    def test_a_held_withdrawal_is_announced_by_sms_and_email_with_its_end(self, prices):
        account = factories.make_account(customer=factories.make_customer(kyc_level=3))

        withdrawal = make_withdrawal(account, amount="1000.5")

        assert withdrawal.status == "HELD"
        assert notices(account.customer) == [("withdrawal_held", "EMAIL"), ("withdrawal_held", "SMS")]
        sms = Notification.objects.get(customer=account.customer, channel="SMS")
        assert f"{REQUESTED_AT + timedelta(hours=24):%Y-%m-%d %H:%M}" in sms.body

    def test_an_automatic_rejection_says_why_in_plain_words(self, prices, verified_account):
        customer = verified_account.customer
        customer.password_changed_at = REQUESTED_AT - timedelta(hours=2)
        customer.save(update_fields=["password_changed_at"])

        make_withdrawal(verified_account, amount="0.01")

        email = Notification.objects.get(customer=customer, channel="EMAIL")
        assert email.template_code == "withdrawal_rejected"
        assert "24 hours after a password change" in email.body

    def test_a_frozen_withdrawal_reads_like_any_review_and_names_no_suspicion(self, prices, verified_account):
        restrictions.add_restriction(
            customer=verified_account.customer,
            code="sanctions_hit",
            rule="screening",
            actor=factories.SYSTEM,
            now=factories.NOW,
        )

        withdrawal = make_withdrawal(verified_account, amount="0.01")

        email = Notification.objects.get(customer=verified_account.customer)
        assert withdrawal.status == "FROZEN"
        assert email.template_code == "withdrawal_in_review"
        assert "sanction" not in email.body.lower()

    def test_an_approved_withdrawal_sends_no_notice(self, prices, verified_account):
        withdrawal = make_withdrawal(verified_account, amount="0.01")

        assert withdrawal.status == "APPROVED"
        assert notices(verified_account.customer) == []

    def test_a_rejection_by_staff_is_announced_without_the_internal_reason(self, prices, risk_officer):
        from backoffice.audit import Actor
        from withdrawals import services

        account = factories.make_account(customer=factories.make_customer(kyc_level=3))
        withdrawal = make_withdrawal(account, amount="1000.5")

        services.reject_withdrawal(
            withdrawal=withdrawal,
            actor=Actor.staff(risk_officer),
            reason="matches the phishing report of 12 March",
            now=REQUESTED_AT,
        )

        email = Notification.objects.get(
            customer=account.customer, template_code="withdrawal_rejected", channel="EMAIL"
        )
        assert "declined after review" in email.body
        assert "phishing" not in email.body
