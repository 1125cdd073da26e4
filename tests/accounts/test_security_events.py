import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import geoip
from accounts.models import Customer, CustomerLock, KnownDevice, Notification, SecurityEvent
from backoffice.audit import Actor
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, make_account, make_api_client, make_customer
from trading_risk.models import Alert

URL = "/api/v1/security-events/"
_ids = iter(range(1, 10**9))


def event(type="login", customer=None, at=NOW, ip="203.0.113.7", device="dev-1", **extra):
    item = {"event_id": f"E{next(_ids)}", "type": type, "ip": ip, "device_id": device, "at": at.isoformat(), **extra}
    if customer is not None:
        item["customer_id"] = customer.external_id
    return item


def send(client, *events):
    response = client.post(URL, json.dumps(list(events)), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def actions(client, *events):
    return [r["actions"] for r in send(client, *events)["results"]]


@pytest.fixture
def customer(db):
    c = make_customer(external_id="C-77")
    make_account(customer=c, external_id="A-77")
    return c


class TestIpAnomaly:
    def test_a_login_from_an_ip_not_seen_for_90_days_asks_for_a_notice(self, engine, customer):
        send(engine, event(customer=customer, ip="198.51.100.1", at=NOW - timedelta(days=200)))
        send(engine, event(customer=customer, ip="198.51.100.2", at=NOW - timedelta(days=1)))

        assert actions(engine, event(customer=customer, ip="198.51.100.1")) == [["notify_sms_email"]]

    @pytest.mark.parametrize(("age", "notified"), [(timedelta(days=90), False), (timedelta(days=90, seconds=1), True)])
    def test_the_window_edge(self, engine, customer, age, notified):
        send(engine, event(customer=customer, ip="198.51.100.1", at=NOW - age))

        result = actions(engine, event(customer=customer, ip="198.51.100.1"))

        assert (result == [["notify_sms_email"]]) is notified

    def test_a_login_from_another_country_than_usual_asks_for_a_notice(self, engine, customer):
        geoip.replace_ranges(
            ranges=geoip.parse_rows(["198.51.100.0/24,DE", "192.0.2.0/24,BR"]),
            source="test",
            actor=Actor.system("tests"),
            now=NOW,
        )
        for days in (3, 2, 1):
            send(engine, event(customer=customer, ip=f"198.51.100.{days}", at=NOW - timedelta(days=days)))
        send(engine, event(customer=customer, ip="192.0.2.9", at=NOW - timedelta(hours=5)))

        assert actions(engine, event(customer=customer, ip="198.51.100.3")) == [[]]
        assert actions(engine, event(customer=customer, ip="192.0.2.9")) == [["notify_sms_email"]]


class TestDevices:
    def test_the_first_login_from_a_device_needs_verification_and_later_ones_do_not(self, engine, customer):
        first = actions(engine, event(customer=customer, device="phone-1"))
        second = actions(engine, event(customer=customer, device="phone-1"))

        assert first == [["require_device_verification", "notify_sms_email"]]
        assert second == [[]]
        assert KnownDevice.objects.filter(customer=customer, device_id="phone-1").count() == 1

    def test_events_of_one_batch_see_each_other(self, engine, customer):
        result = actions(engine, event(customer=customer, device="tab"), event(customer=customer, device="tab"))

        assert result == [["require_device_verification", "notify_sms_email"], []]


class TestPasswordChange:
    def test_records_the_change_time_and_logs_it(self, engine, customer):
        send(engine, event(customer=customer))
        at = NOW + timedelta(minutes=5)

        result = actions(engine, event("password_change", customer=customer, at=at))

        customer.refresh_from_db()
        assert result == [["notify_sms_email"]]
        assert customer.password_changed_at == at
        assert OperationsLogEntry.objects.filter(action="customer.password_change").exists()

    def test_from_a_new_device_also_needs_face_verification(self, engine, customer):
        send(engine, event(customer=customer, device="laptop"))

        result = actions(engine, event("password_change", customer=customer, device="stranger"))

        assert result == [["require_face_verification", "notify_sms_email"]]


class TestFailedLogins:
    def test_the_fifth_failure_locks_the_customer_opens_an_alert_and_tells_them(self, engine, customer):
        failures = [event("login_failed", customer=customer, at=NOW + timedelta(seconds=i)) for i in range(5)]

        result = actions(engine, *failures)

        assert result == [[], [], [], [], ["lock_account"]]
        lock = CustomerLock.objects.get(customer=customer)
        assert lock.rule == "account_takeover"
        assert Alert.objects.get(customer=customer).rule == "account_takeover"
        assert set(Notification.objects.filter(customer=customer).values_list("channel", flat=True)) == {"SMS", "EMAIL"}
        state = engine.get("/api/v1/accounts/A-77/restrictions").json()
        assert state["can_trade"] is False
        assert state["reasons"] == [{"code": "account_locked", "rule": "account_takeover"}]

    def test_failures_outside_the_window_do_not_count(self, engine, customer):
        old = [event("login_failed", customer=customer, at=NOW - timedelta(minutes=16)) for _ in range(4)]
        send(engine, *old)

        assert actions(engine, event("login_failed", customer=customer)) == [[]]

    def test_a_locked_customer_logging_in_is_told_it_is_locked(self, engine, customer):
        send(engine, *[event("login_failed", customer=customer, at=NOW + timedelta(seconds=i)) for i in range(5)])

        assert actions(engine, event(customer=customer, at=NOW + timedelta(minutes=1))) == [["lock_account"]]
        assert CustomerLock.objects.filter(customer=customer).count() == 1

    def test_one_ip_failing_against_ten_customers_locks_the_tenth(self, engine):
        victims = [make_customer() for _ in range(10)]

        result = actions(engine, *[event("login_failed", customer=c, ip="192.0.2.66") for c in victims])

        assert result[:9] == [[]] * 9
        assert result[9] == ["lock_account"]
        assert CustomerLock.objects.get().customer == victims[9]


class TestRegistration:
    def test_the_101st_attempt_from_one_ip_in_a_day_is_throttled_until_the_day_ends(self, engine):
        attempts = [event("registration_attempt", cookie_id=f"ck{i}", device=f"d{i}") for i in range(101)]

        results = send(engine, *attempts)["results"]

        assert [r["actions"] for r in results[:100]] == [[]] * 100
        assert results[100]["actions"] == ["throttle"]
        assert results[100]["retry_after"] == 12 * 3600  # NOW is noon UTC

    def test_a_second_account_check_in_one_second_blocks_the_cookie_for_30_seconds(self, engine):
        first, second = event("account_check", cookie_id="ck"), event("account_check", cookie_id="ck")
        later = event("account_check", cookie_id="ck", at=NOW + timedelta(seconds=10))
        after_block = event("account_check", cookie_id="ck", at=NOW + timedelta(seconds=31))

        results = send(engine, first, second, later, after_block)["results"]

        assert [(r["actions"], r.get("retry_after")) for r in results] == [
            ([], None),
            (["throttle"], 30),
            (["throttle"], 20),
            ([], None),
        ]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentCounters:
    def test_concurrent_registrations_pass_the_cap_exactly_once_each(self):
        _, token = make_api_client()
        outcomes, lock = [], threading.Lock()

        def worker(n):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            try:
                for i in range(15):
                    body = send(client, event("registration_attempt", device=f"d{n}-{i}", cookie_id=f"c{n}-{i}"))
                    with lock:
                        outcomes.append(body["results"][0]["actions"])
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert len(outcomes) == 120
        assert outcomes.count([]) == 100
        assert outcomes.count(["throttle"]) == 20


class TestIdempotency:
    def test_the_same_events_again_get_the_same_answers_and_store_nothing(self, engine, customer):
        batch = [event(customer=customer, device="new"), event("registration_attempt")]
        first = send(engine, *batch)

        again = send(engine, *batch)

        assert again["results"] == first["results"]
        assert (again["accepted"], again["duplicates"]) == (0, 2)
        assert SecurityEvent.objects.count() == 2

    def test_the_same_event_id_with_other_content_is_409_and_nothing_is_stored(self, engine, customer):
        original = event(customer=customer)
        send(engine, original)

        response = engine.post(
            URL,
            json.dumps([event(customer=customer), {**original, "ip": "192.0.2.1"}]),
            content_type="application/json",
        )

        assert response.status_code == 409
        assert response.json()["error"]["details"][0]["index"] == 1
        assert SecurityEvent.objects.count() == 1


class TestBadInput:
    @pytest.mark.parametrize(
        ("item", "field"),
        [
            ({"type": "login", "ip": "999.1.1.1"}, "ip"),
            ({"type": "login", "customer_id": None}, "customer_id"),
            ({"type": "registration_attempt"}, "customer_id"),
            ({"type": "account_check", "cookie_id": None, "customer_id": None}, "cookie_id"),
            ({"type": "logout"}, "type"),
            ({"at": "2026-03-02 12:00"}, "at"),
            ({"device_id": ""}, "device_id"),
            ({"country": "DE"}, "country"),
        ],
    )
    def test_refuses_a_bad_event_and_stores_nothing(self, engine, customer, item, field):
        bad = {**event(customer=customer), **item}
        bad = {k: v for k, v in bad.items() if v is not None}

        response = engine.post(URL, json.dumps([event(customer=customer), bad]), content_type="application/json")

        assert response.status_code == 400
        assert response.json()["error"]["details"][0] == {
            **response.json()["error"]["details"][0],
            "index": 1,
            "field": field,
        }
        assert not SecurityEvent.objects.exists()

    def test_an_unknown_customer_is_a_400(self, engine, db):
        ghost = Customer(external_id="nobody")

        response = engine.post(URL, json.dumps([event(customer=ghost)]), content_type="application/json")

        assert response.status_code == 400
        assert response.json()["error"]["details"] == [
            {"index": 0, "field": "customer_id", "message": "unknown customer"}
        ]

    def test_needs_the_events_scope(self, db):
        _, token = make_api_client(scopes=("reference",))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

        assert client.post(URL, "[]", content_type="application/json").status_code == 403


class TestWithoutRedis:
    def test_decisions_still_come_back_and_anonymous_traffic_is_throttled(
        self, engine, customer, settings, monkeypatch
    ):
        from backoffice import redis_client

        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        monkeypatch.setattr(redis_client, "_client", None)

        result = actions(
            engine,
            event("registration_attempt"),
            event(customer=customer, device="d1"),
            event("login_failed", customer=customer),
        )

        monkeypatch.setattr(redis_client, "_client", None)
        assert result == [["throttle"], ["require_device_verification", "notify_sms_email"], []]
