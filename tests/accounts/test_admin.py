import pytest

from accounts import locks
from accounts.models import CustomerLock, NotificationTemplate, Restriction, SuspiciousEntry
from backoffice.audit import Actor
from backoffice.models import ChangeRequest, OperationsLogEntry
from tests.factories import NOW, make_account, make_customer


def page(customer):
    return f"/admin/accounts/customer/{customer.pk}/change/"


@pytest.fixture
def customer(db):
    c = make_customer(name="Grace Hopper")
    make_account(customer=c, external_id="A-G1")
    return c


class TestCustomerPage:
    def test_shows_the_customer_at_a_glance(self, login, risk_officer, customer, django_assert_max_num_queries):
        locks.lock_customer(customer=customer, rule="staff", reason="phishing report", actor=Actor.system("t"), now=NOW)
        client = login(risk_officer)

        with django_assert_max_num_queries(40):
            response = client.get(page(customer))

        html = response.content.decode()
        assert response.status_code == 200
        for text in ("At a glance", "LOCKED", "phishing report", "account_locked", "Operations log", "account_locked"):
            assert text in html

    def test_a_risk_officer_locks_restricts_and_lifts_from_it(self, login, risk_officer, customer):
        client = login(risk_officer)

        client.post(
            page(customer),
            {"action": "restrict", "code": "restricted_open", "account": "", "until": "", "reason": "order spam"},
        )
        restriction = Restriction.objects.get(code="restricted_open")
        client.post(page(customer), {"action": "lift", "restriction": restriction.pk, "reason": "called customer"})
        client.post(page(customer), {"action": "lock", "reason": "takeover"})

        restriction.refresh_from_db()
        assert restriction.lifted_at is not None
        assert CustomerLock.objects.get(customer=customer).locked_by == "rita"

    def test_unlock_is_verified_then_requested_then_approved_by_another_officer(
        self, login, risk_officer, second_risk_officer, customer
    ):
        locks.lock_customer(customer=customer, rule="staff", reason="r", actor=Actor.system("t"), now=NOW)
        client = login(risk_officer)
        for kind in ("sms", "email"):
            client.post(page(customer), {"action": "verify", "kind": kind, "note": "code confirmed"})
        client.post(page(customer), {"action": "request_unlock", "reason": "verified by phone"})
        change = ChangeRequest.objects.get(action="customer.unlock")

        login(second_risk_officer).post(
            f"/admin/backoffice/changerequest/{change.pk}/change/", {"decision": "approve", "reason": "ok"}
        )

        assert CustomerLock.objects.get(customer=customer).unlocked_at is not None

    def test_an_auditor_can_look_but_not_lock(self, login, auditor, customer):
        client = login(auditor)

        looked = client.get(page(customer))
        response = client.post(page(customer), {"action": "lock", "reason": "x"}, follow=True)

        assert looked.status_code == 200
        assert "permission" in response.content.decode()
        assert not CustomerLock.objects.exists()

    def test_a_bad_form_changes_nothing_and_says_why(self, login, risk_officer, customer):
        response = login(risk_officer).post(
            page(customer), {"action": "restrict", "code": "be_nice", "reason": ""}, follow=True
        )

        assert "Please correct" in response.content.decode()
        assert not Restriction.objects.exists()


class TestSuspiciousListPages:
    def test_mark_then_export(self, login, risk_officer):
        client = login(risk_officer)

        client.post(
            "/admin/accounts/suspiciousentry/mark/",
            {"kind": "IP", "value": "192.0.2.1", "status": "BANNED", "reason": "stuffing source"},
        )
        export = client.get("/admin/accounts/suspiciousentry/export.csv")

        assert SuspiciousEntry.objects.get().created_by == "rita"
        assert export["Content-Type"] == "text/csv"
        assert "192.0.2.1,BANNED,stuffing source" in export.content.decode()

    def test_a_bad_ip_is_a_form_error(self, login, risk_officer):
        response = login(risk_officer).post(
            "/admin/accounts/suspiciousentry/mark/",
            {"kind": "IP", "value": "300.1.1.1", "status": "BANNED", "reason": "x"},
        )

        assert "not an IP" in response.content.decode()
        assert not SuspiciousEntry.objects.exists()


class TestTemplateEditing:
    def test_an_edit_in_the_admin_is_logged(self, login, risk_officer):
        template = NotificationTemplate.objects.get(code="account_locked", channel="SMS")

        login(risk_officer).post(
            f"/admin/accounts/notificationtemplate/{template.pk}/change/", {"subject": "", "body": "Locked. Call us."}
        )

        template.refresh_from_db()
        assert template.body == "Locked. Call us."
        assert OperationsLogEntry.objects.filter(action="notification_template.update").exists()
