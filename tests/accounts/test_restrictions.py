import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from accounts import restrictions
from accounts.models import RestrictionChange
from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, make_account, make_api_client, make_customer

SYSTEM = Actor.system("tests")


def restrict(customer, code="restricted_open", *, account=None, until=None, now=NOW, rule="staff"):
    return restrictions.add_restriction(
        customer=customer, account=account, code=code, rule=rule, reason="test", until=until, actor=SYSTEM, now=now
    )


class TestAccountState:
    def test_a_customer_wide_restriction_applies_to_every_account(self, db):
        customer = make_customer()
        spot, futures = make_account(customer=customer), make_account(customer=customer)

        restrict(customer, "trading_banned")

        assert restrictions.account_state(spot, now=NOW)["can_trade"] is False
        assert restrictions.account_state(futures, now=NOW)["can_trade"] is False

    def test_an_account_restriction_applies_to_that_account_only(self, db):
        customer = make_customer()
        spot, futures = make_account(customer=customer), make_account(customer=customer)

        restrict(customer, account=spot)

        assert restrictions.account_state(spot, now=NOW)["can_open"] is False
        assert restrictions.account_state(futures, now=NOW)["can_open"] is True

    def test_a_restriction_ends_on_its_own_at_until(self, db):
        account = make_account()
        until = NOW + timedelta(minutes=30)
        restrict(account.customer, until=until)

        assert restrictions.account_state(account, now=until - timedelta(microseconds=1))["can_open"] is False
        assert restrictions.account_state(account, now=until)["can_open"] is True

    def test_refuses_an_unknown_code_and_an_end_in_the_past(self, db):
        customer = make_customer()

        with pytest.raises(InvalidInput):
            restrict(customer, "be_nice")
        with pytest.raises(InvalidInput):
            restrict(customer, until=NOW)


class TestLiftAndExpire:
    def test_lifting_needs_a_reason_and_is_logged_and_published(self, db):
        account = make_account()
        restriction = restrict(account.customer)

        with pytest.raises(InvalidInput):
            restrictions.lift_restriction(restriction=restriction, actor=SYSTEM, reason=" ", now=NOW)
        restrictions.lift_restriction(restriction=restriction, actor=SYSTEM, reason="spoke to customer", now=NOW)

        assert restrictions.account_state(account, now=NOW)["can_open"] is True
        assert list(RestrictionChange.objects.values_list("change", flat=True).order_by("pk")) == ["ADDED", "LIFTED"]
        assert OperationsLogEntry.objects.get(action="restriction.lift").reason == "spoke to customer"

    def test_expiry_is_published_once(self, db):
        account = make_account()
        until = NOW + timedelta(minutes=30)
        restrict(account.customer, until=until)

        before = restrictions.expire_restrictions(now=until - timedelta(seconds=1))
        first = restrictions.expire_restrictions(now=until + timedelta(seconds=3))
        again = restrictions.expire_restrictions(now=until + timedelta(seconds=8))

        assert (before, first, again) == (0, 1, 0)
        expired = RestrictionChange.objects.get(change="EXPIRED")
        assert expired.at == until + timedelta(seconds=3)
        assert expired.state["can_open"] is True

    def test_a_new_account_of_a_restricted_customer_enters_the_feed_restricted(self, engine):
        customer = make_customer(external_id="C-9")
        restrict(customer, "account_locked")

        engine.put("/api/v1/accounts/A-new", '{"customer_id": "C-9", "kind": "spot"}', content_type="application/json")

        change = RestrictionChange.objects.get(account__external_id="A-new")
        assert (change.change, change.state["can_trade"]) == ("ADDED", False)


class TestRestrictionsApi:
    def test_answers_the_contract_fields(self, engine):
        account = make_account(external_id="A-1")
        restrict(account.customer, until=NOW + timedelta(days=3650))

        body = engine.get("/api/v1/accounts/A-1/restrictions").json()

        assert {"can_trade", "can_open", "can_close", "can_withdraw", "reduce_only", "reasons"} <= set(body)
        assert body["reduce_only"] is True
        assert body["reasons"][0]["code"] == "restricted_open"
        assert "until" in body["reasons"][0]

    def test_an_unknown_account_is_404(self, engine):
        response = engine.get("/api/v1/accounts/nope/restrictions")

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"

    def test_runs_a_fixed_number_of_queries(self, engine, django_assert_max_num_queries):
        account = make_account(external_id="A-1")
        for code in ("restricted_open", "trading_banned", "below_maintenance_margin"):
            restrict(account.customer, code)

        with django_assert_max_num_queries(4):
            engine.get("/api/v1/accounts/A-1/restrictions")


class TestChangeFeed:
    def test_pages_through_changes_with_a_cursor(self, engine):
        customer = make_customer()
        make_account(customer=customer)
        for _ in range(5):
            restrict(customer)

        first = engine.get("/api/v1/restrictions/changes?limit=3").json()
        rest = engine.get(f"/api/v1/restrictions/changes/?after={first['next_cursor']}&limit=3").json()
        empty = engine.get(f"/api/v1/restrictions/changes?after={rest['next_cursor']}").json()

        assert (len(first["changes"]), first["has_more"]) == (3, True)
        assert (len(rest["changes"]), rest["has_more"]) == (2, False)
        assert (empty["changes"], empty["next_cursor"]) == ([], rest["next_cursor"])
        cursors = [c["cursor"] for c in first["changes"] + rest["changes"]]
        assert cursors == sorted(cursors, key=int)
        assert first["changes"][0]["change"] == "added"
        assert first["changes"][0]["restrictions"]["can_open"] is False

    @pytest.mark.parametrize("query", ["after=-1", "after=abc", "limit=0", "limit=10001", "after=1.5"])
    def test_refuses_a_bad_cursor_or_limit(self, engine, query):
        response = engine.get(f"/api/v1/restrictions/changes?{query}")

        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_request"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestChangeFeedUnderConcurrentWriters:
    def test_a_change_that_commits_late_is_not_skipped_by_a_poller(self):
        """Writer A numbers its change first but commits last; a poll in between must not pass it."""
        customer, other = make_customer(), make_customer()
        make_account(customer=customer)
        make_account(customer=other)
        _, token = make_api_client()
        poller = APIClient()
        poller.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        a_written, release_a = threading.Event(), threading.Event()

        def writer_a():
            try:
                with transaction.atomic():
                    restrict(customer, rule="A")
                    a_written.set()
                    release_a.wait(10)
            finally:
                connection.close()

        def writer_b():
            try:
                restrict(other, rule="B")
            finally:
                connection.close()

        a = threading.Thread(target=writer_a)
        a.start()
        a_written.wait(10)
        b = threading.Thread(target=writer_b)
        b.start()
        time.sleep(0.5)  # B is now either waiting for A (correct) or committed ahead of it
        mid = poller.get("/api/v1/restrictions/changes").json()
        release_a.set()
        a.join()
        b.join()
        rest = poller.get(f"/api/v1/restrictions/changes?after={mid['next_cursor']}").json()

        seen = [c["restriction"]["rule"] for c in mid["changes"] + rest["changes"]]
        assert sorted(seen) == ["A", "B"]
        assert len(seen) == len(set(seen))

    def test_many_writers_and_a_poller_see_every_change_exactly_once(self):
        customers = [make_customer() for _ in range(6)]
        for c in customers:
            make_account(customer=c)
        _, token = make_api_client()
        done = threading.Event()
        polled: list[str] = []

        def writer(customer):
            try:
                for _ in range(10):
                    restrict(customer)
            finally:
                connection.close()

        def poll():
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            cursor = "0"
            try:
                while True:
                    finished = done.is_set()
                    page = client.get(f"/api/v1/restrictions/changes?after={cursor}").json()
                    polled.extend(c["cursor"] for c in page["changes"])
                    cursor = page["next_cursor"]
                    if finished and not page["changes"]:
                        return
            finally:
                connection.close()

        reader = threading.Thread(target=poll)
        reader.start()
        writers = [threading.Thread(target=writer, args=(c,)) for c in customers]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        done.set()
        reader.join()

        assert len(polled) == 60
        assert len(set(polled)) == 60
        assert sorted(polled, key=int) == sorted(
            map(str, RestrictionChange.objects.values_list("pk", flat=True)), key=int
        )
