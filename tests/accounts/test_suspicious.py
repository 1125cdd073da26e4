import json
from datetime import timedelta

import pytest
import time_machine

from accounts import suspicious
from accounts.models import SuspiciousEntry
from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from tests.factories import NOW, make_customer

OFFICER = Actor.system("tests")


def mark(value, status="BANNED", kind="IP", **kwargs):
    return suspicious.mark_suspicious(
        kind=kind,
        value=value,
        status=status,
        reason="daily review",
        actor=OFFICER,
        now=kwargs.pop("now", NOW),
        **kwargs,
    )


class TestMarkSuspicious:
    def test_one_address_has_one_entry_whatever_its_spelling(self, db):
        mark("2001:db8:0:0::1", status="FLAGGED")
        mark("2001:db8::1", status="BANNED")

        assert SuspiciousEntry.objects.get().status == "BANNED"

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"value": "not-an-ip"}, "value"),
            ({"value": "1.2.3.4", "status": "SHOUT"}, "status"),
            ({"value": "1.2.3.4", "expires_at": NOW}, "expires_at"),
        ],
    )
    def test_refuses_bad_entries(self, db, kwargs, field):
        with pytest.raises(InvalidInput) as refused:
            mark(**kwargs)

        assert refused.value.details[0]["field"] == field

    def test_an_expired_entry_is_no_longer_in_force(self, db):
        mark("192.0.2.1", expires_at=NOW + timedelta(hours=1))

        assert suspicious.statuses(ips={"192.0.2.1"}, devices=set(), now=NOW)
        assert not suspicious.statuses(ips={"192.0.2.1"}, devices=set(), now=NOW + timedelta(hours=1))

    def test_exports_the_list_as_csv(self, db):
        mark("192.0.2.1")
        mark("dev-9", kind="DEVICE", status="LIMITED")

        lines = suspicious.export_csv(now=NOW).splitlines()

        assert lines[0].startswith("kind,value,status,reason")
        assert lines[1:] == [
            f"DEVICE,dev-9,LIMITED,daily review,{NOW.isoformat()},system:tests,",
            f"IP,192.0.2.1,BANNED,daily review,{NOW.isoformat()},system:tests,",
        ]


class TestSuspiciousSourcesInSecurityEvents:
    @time_machine.travel(NOW, tick=False)
    def test_a_banned_ip_is_refused_at_once(self, engine):
        customer = make_customer()
        mark("192.0.2.1", expires_at=NOW + timedelta(minutes=10))
        item = {
            "event_id": "E1",
            "type": "login",
            "customer_id": customer.external_id,
            "ip": "192.0.2.1",
            "device_id": "d",
            "at": NOW.isoformat(),
        }

        result = engine.post("/api/v1/security-events", json.dumps([item]), content_type="application/json").json()

        assert result["results"] == [{"event_id": "E1", "actions": ["throttle"], "retry_after": 600}]
