from io import StringIO

from django.core.management import call_command

from accounts.models import CustomerLock, Restriction, SecurityEvent, SuspiciousEntry
from backoffice.models import ChangeRequest
from trading_risk.models import Alert


class TestAccountSecurityDemo:
    def test_plants_a_case_for_every_account_security_rule(self, db):
        call_command("load_demo", "--seed", "3", "--customers", "60", stdout=StringIO())

        assert SecurityEvent.objects.filter(type="login").count() > 100
        assert set(CustomerLock.objects.values_list("rule", flat=True)) == {
            "account_takeover",
            "credential_stuffing",
            "staff",
        }
        security_rules = {"account_takeover", "credential_stuffing"}
        assert set(Alert.objects.filter(rule__in=security_rules).values_list("rule", flat=True)) == security_rules
        assert SecurityEvent.objects.filter(type="registration_attempt", actions=["throttle"]).exists()
        assert SecurityEvent.objects.filter(actions__contains=["notify_sms_email"]).exists()
        assert Restriction.objects.filter(rule="staff", until__isnull=False).exists()
        assert set(SuspiciousEntry.objects.values_list("status", flat=True)) == {"BANNED", "LIMITED", "FLAGGED"}
        assert ChangeRequest.objects.filter(action="customer.unlock", status="PENDING").exists()
