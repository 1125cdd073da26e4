import pytest
from django.core import mail

from accounts import notifications
from accounts.models import Notification, NotificationTemplate
from backoffice.audit import Actor
from backoffice.errors import DomainError
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, make_customer


class TestNotifyCustomer:
    def test_renders_the_template_and_delivers_sms_to_the_outbox_and_email_by_mail(
        self, db, django_capture_on_commit_callbacks
    ):
        customer = make_customer(name="Ada", email="ada@example.com")

        with django_capture_on_commit_callbacks(execute=True):
            sent = notifications.notify_customer(
                customer=customer,
                template_code="account_locked",
                channels_=("SMS", "EMAIL"),
                now=NOW,
                context={"reason": "test"},
            )

        by_channel = {n.channel: Notification.objects.get(pk=n.pk) for n in sent}
        assert {n.status for n in by_channel.values()} == {"SENT"}
        assert by_channel["SMS"].recipient == customer.phone
        assert by_channel["SMS"].provider_ref == f"outbox-{by_channel['SMS'].pk}"
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["ada@example.com"]
        assert "Dear Ada" in mail.outbox[0].body

    def test_nothing_is_delivered_if_the_transaction_rolls_back(self, db, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            notifications.notify_customer(
                customer=make_customer(), template_code="account_locked", channels_=("SMS",), now=NOW
            )

        assert len(callbacks) == 1
        assert Notification.objects.get().status == "QUEUED"

    def test_a_sent_notification_is_never_sent_twice(self, db):
        notification = notifications.notify_customer(
            customer=make_customer(), template_code="account_locked", channels_=("EMAIL",), now=NOW
        )[0]

        notifications.send_notification(notification_id=notification.pk, now=NOW)
        notifications.send_notification(notification_id=notification.pk, now=NOW)

        assert len(mail.outbox) == 1

    def test_a_task_for_a_notification_that_was_rolled_back_does_nothing(self, db):
        assert notifications.send_notification(notification_id=987654, now=NOW) == "MISSING"
        assert mail.outbox == []

    def test_a_missing_template_is_an_error(self, db):
        with pytest.raises(DomainError, match="No 'nothing' template"):
            notifications.notify_customer(
                customer=make_customer(), template_code="nothing", channels_=("SMS",), now=NOW
            )


class TestUpdateTemplate:
    def test_logs_the_old_and_new_wording(self, db, risk_officer):
        template = NotificationTemplate.objects.get(code="account_locked", channel="SMS")

        notifications.update_template(
            template=template, subject="", body="Locked, {{ name }}.", actor=Actor.staff(risk_officer), now=NOW
        )

        entry = OperationsLogEntry.objects.get(action="notification_template.update")
        assert entry.after["body"] == "Locked, {{ name }}."
        assert entry.before["body"] != entry.after["body"]

    def test_refuses_a_template_that_does_not_parse(self, db, risk_officer):
        from django.template import TemplateSyntaxError

        template = NotificationTemplate.objects.get(code="account_locked", channel="SMS")

        with pytest.raises(TemplateSyntaxError):
            notifications.update_template(
                template=template, subject="", body="{% if %}", actor=Actor.staff(risk_officer), now=NOW
            )
