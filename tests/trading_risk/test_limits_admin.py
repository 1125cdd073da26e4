"""The staff pages that request position limits, hedging exemptions and broker-member limits, and record
broker-limit reviews."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backoffice import approvals
from backoffice.audit import Actor
from backoffice.models import ChangeRequest, OperationsLogEntry
from tests.factories import make_account, make_customer, make_staff
from tests.trading_risk.conftest import make_instrument
from trading_risk.models import BrokerLimitReview, BrokerMember, HedgingExemption, PositionLimit

LIMIT_URL = "/admin/trading_risk/positionlimit/request/"
EXEMPTION_URL = "/admin/trading_risk/hedgingexemption/request/"
MEMBER_URL = "/admin/trading_risk/brokermember/request/"


@pytest.fixture
def contracts(db):
    return make_instrument("BTCUSDT-PERP", base="BTC", kind="PERPETUAL")


@pytest.fixture
def broker(contracts):
    return make_customer(type="CORPORATE", external_id="BROKER1")


def approve(change, user):
    return approvals.approve_change(
        change_request=change, actor=Actor.staff(user), reason="checked", now=timezone.now()
    )


def review_url(member):
    return f"/admin/trading_risk/brokermember/{member.pk}/review/"


def make_member(broker, requester, approver, *, capital="100", limit="80"):
    change = approvals.request_change(
        action="broker_member.set",
        payload={
            "customer_id": broker.external_id,
            "member_number": "M-7",
            "net_capital_btc": capital,
            "limit_btc": limit,
        },
        actor=Actor.staff(requester),
        reason="new member",
        now=timezone.now(),
    )
    approve(change, approver)
    return BrokerMember.objects.get()


class TestPagesRender:
    def test_every_page_of_the_section_renders_for_a_risk_officer(
        self, login, risk_officer, second_risk_officer, broker
    ):
        member = make_member(broker, risk_officer, second_risk_officer)
        client = login(risk_officer)

        for url in (
            "/admin/trading_risk/positionlimit/",
            LIMIT_URL,
            "/admin/trading_risk/hedgingexemption/",
            EXEMPTION_URL,
            "/admin/trading_risk/brokermember/",
            MEMBER_URL,
            f"/admin/trading_risk/brokermember/{member.pk}/change/",
            review_url(member),
        ):
            assert client.get(url).status_code == 200, url

    def test_each_list_links_to_its_request_page(self, login, risk_officer, db):
        client = login(risk_officer)

        for listing, request_page in (
            ("/admin/trading_risk/positionlimit/", LIMIT_URL),
            ("/admin/trading_risk/hedgingexemption/", EXEMPTION_URL),
            ("/admin/trading_risk/brokermember/", MEMBER_URL),
        ):
            assert f'href="{request_page}"' in client.get(listing).content.decode(), listing

    def test_the_review_page_shows_the_members_limit_and_capital(
        self, login, risk_officer, second_risk_officer, broker
    ):
        member = make_member(broker, risk_officer, second_risk_officer, capital="123", limit="99")

        page = login(risk_officer).get(review_url(member)).content.decode()

        assert "99 BTC" in page
        assert "123 BTC" in page


class TestPositionLimitRequests:
    def test_a_valid_limit_is_pending_until_another_risk_officer_approves_it(
        self, login, risk_officer, second_risk_officer, contracts
    ):
        response = login(risk_officer).post(
            LIMIT_URL, {"product": "btc", "customer_type": "CORPORATE", "limit_btc": "250", "reason": "thin book"}
        )

        change = ChangeRequest.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/admin/backoffice/changerequest/{change.pk}/change/"
        assert (change.action, change.status, change.requested_by) == ("position_limit.set", "PENDING", risk_officer)
        assert not PositionLimit.objects.exists()

        approve(change, second_risk_officer)

        limit = PositionLimit.objects.get()
        assert (limit.product, limit.customer_type, limit.limit_btc, limit.change_request) == (
            "BTC",
            "CORPORATE",
            Decimal("250"),
            change,
        )

    def test_the_requester_cannot_approve_their_own_limit(self, login, risk_officer, contracts):
        login(risk_officer).post(LIMIT_URL, {"product": "BTC", "limit_btc": "250", "reason": "thin book"})

        with pytest.raises(approvals.SelfApproval):
            approve(ChangeRequest.objects.get(), risk_officer)

        assert not PositionLimit.objects.exists()

    def test_another_officer_approves_it_in_the_change_request_admin(
        self, client, login, risk_officer, second_risk_officer, contracts
    ):
        login(risk_officer).post(LIMIT_URL, {"product": "BTC", "limit_btc": "250", "reason": "thin book"})
        change = ChangeRequest.objects.get()
        client.logout()

        login(second_risk_officer).post(
            f"/admin/backoffice/changerequest/{change.pk}/change/", {"decision": "approve", "reason": "ok"}
        )

        change.refresh_from_db()
        assert change.status == "APPLIED"
        assert PositionLimit.objects.get().limit_btc == Decimal("250")

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"product": "BTC", "limit_btc": "abc"}, "limit_btc"),
            ({"product": "BTC", "limit_btc": "-5"}, "limit_btc"),
            ({"product": "BTC", "limit_btc": "1" + "0" * 21}, "limit_btc"),
            ({"product": "DOGE", "limit_btc": "5"}, "product"),
            ({"product": "BTC", "limit_btc": "5", "contract_month": "2026-13"}, "contract_month"),
            ({"product": "BTC", "limit_btc": "5", "delivery_month_limit_btc": "6"}, "delivery_month_limit_btc"),
            ({"product": "BTC"}, "limit_btc"),
            ({"product": "BTC", "limit_btc": "5", "reason": ""}, "reason"),
        ],
    )
    def test_bad_input_is_a_form_error_and_requests_nothing(self, login, risk_officer, contracts, data, field):
        response = login(risk_officer).post(LIMIT_URL, {"reason": "thin book", **data})

        assert response.status_code == 200
        assert field in response.context["form"].errors
        assert not ChangeRequest.objects.exists()


class TestExemptionRequests:
    def test_a_valid_exemption_takes_effect_only_when_a_second_person_approves(
        self, login, risk_officer, second_risk_officer, contracts
    ):
        account = make_account(kind="FUTURES")
        expires = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)

        response = login(risk_officer).post(
            EXEMPTION_URL,
            {
                "account_id": account.external_id,
                "product": "BTC",
                "expires_at": expires.strftime("%Y-%m-%d %H:%M"),
                "reason": "short perpetual against a spot book",
            },
        )

        change = ChangeRequest.objects.get()
        assert response.status_code == 302
        assert (change.action, change.status) == ("hedging_exemption.grant", "PENDING")
        assert not HedgingExemption.objects.exists()

        approve(change, second_risk_officer)

        exemption = HedgingExemption.objects.get()
        assert (exemption.account, exemption.product, exemption.expires_at) == (account, "BTC", expires)
        assert (exemption.requested_by, exemption.approved_by) == ("rita", "raj")

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"account_id": "NOPE"}, "account_id"),
            ({"expires_at": "2020-01-01 00:00"}, "expires_at"),
            ({"expires_at": "next tuesday"}, "expires_at"),
            ({"product": "DOGE"}, "product"),
        ],
    )
    def test_bad_input_is_a_form_error_and_requests_nothing(self, login, risk_officer, contracts, data, field):
        account = make_account(kind="FUTURES")
        valid = {
            "account_id": account.external_id,
            "expires_at": (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M"),
            "reason": "hedge",
        }

        response = login(risk_officer).post(EXEMPTION_URL, valid | data)

        assert response.status_code == 200
        assert field in response.context["form"].errors
        assert not ChangeRequest.objects.exists()


class TestBrokerMemberRequests:
    def test_a_valid_member_limit_exists_only_after_a_second_person_approves(
        self, login, risk_officer, second_risk_officer, broker
    ):
        response = login(risk_officer).post(
            MEMBER_URL,
            {
                "customer_id": broker.external_id,
                "member_number": "M-42",
                "net_capital_btc": "500",
                "limit_btc": "400",
                "reason": "admitted as a broker member",
            },
        )

        change = ChangeRequest.objects.get()
        assert response.status_code == 302
        assert (change.action, change.status) == ("broker_member.set", "PENDING")
        assert not BrokerMember.objects.exists()

        approve(change, second_risk_officer)

        member = BrokerMember.objects.get()
        assert (member.customer, member.member_number, member.limit_btc) == (broker, "M-42", Decimal("400"))

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"limit_btc": "600"}, "limit_btc"),  # above net capital × 1
            ({"customer_id": "NOBODY"}, "customer_id"),
            ({"net_capital_btc": "lots"}, "net_capital_btc"),
            ({"member_number": ""}, "member_number"),
        ],
    )
    def test_bad_input_is_a_form_error_and_requests_nothing(self, login, risk_officer, broker, data, field):
        valid = {
            "customer_id": broker.external_id,
            "member_number": "M-42",
            "net_capital_btc": "500",
            "limit_btc": "400",
            "reason": "admitted",
        }

        response = login(risk_officer).post(MEMBER_URL, valid | data)

        assert response.status_code == 200
        assert field in response.context["form"].errors
        assert not ChangeRequest.objects.exists()

    def test_an_individual_cannot_become_a_broker_member(self, login, risk_officer, contracts):
        person = make_customer(type="INDIVIDUAL")

        response = login(risk_officer).post(
            MEMBER_URL,
            {
                "customer_id": person.external_id,
                "member_number": "M-1",
                "net_capital_btc": "5",
                "limit_btc": "5",
                "reason": "r",
            },
        )

        assert "customer_id" in response.context["form"].errors
        assert not ChangeRequest.objects.exists()


class TestBrokerReviews:
    def test_recording_a_review_moves_the_next_review_14_days_on_and_is_audited(
        self, login, risk_officer, second_risk_officer, broker
    ):
        member = make_member(broker, risk_officer, second_risk_officer, capital="100", limit="80")
        BrokerMember.objects.filter(pk=member.pk).update(next_review_date=timezone.now().date() - timedelta(days=3))

        response = login(second_risk_officer).post(
            review_url(member), {"net_capital_btc": "120", "notes": "audited accounts for Q3"}
        )

        member.refresh_from_db()
        review = BrokerLimitReview.objects.get()
        assert response.status_code == 302
        assert member.next_review_date == timezone.now().date() + timedelta(days=14)
        assert member.net_capital_btc == Decimal("120")
        assert (review.reviewed_by, review.within_capital, review.notes) == ("raj", True, "audited accounts for Q3")
        entry = OperationsLogEntry.objects.get(action="broker_member.review")
        assert (entry.actor, entry.target_id, entry.reason) == ("raj", str(member.pk), "audited accounts for Q3")

    def test_a_review_that_finds_the_limit_above_capital_is_recorded_as_such(
        self, login, risk_officer, second_risk_officer, broker
    ):
        member = make_member(broker, risk_officer, second_risk_officer, capital="100", limit="80")

        login(risk_officer).post(review_url(member), {"net_capital_btc": "50", "notes": "capital fell"})

        assert BrokerLimitReview.objects.get().within_capital is False

    @pytest.mark.parametrize("capital", ["-1", "abc", "1" + "0" * 21])
    def test_a_bad_capital_is_a_form_error_and_records_nothing(
        self, login, risk_officer, second_risk_officer, broker, capital
    ):
        member = make_member(broker, risk_officer, second_risk_officer)
        due = member.next_review_date

        response = login(risk_officer).post(review_url(member), {"net_capital_btc": capital, "notes": "x"})

        member.refresh_from_db()
        assert response.status_code == 200
        assert "net_capital_btc" in response.context["form"].errors
        assert (BrokerLimitReview.objects.count(), member.next_review_date) == (0, due)
        assert not OperationsLogEntry.objects.filter(action="broker_member.review").exists()


class TestAccess:
    @pytest.mark.parametrize("url", [LIMIT_URL, EXEMPTION_URL, MEMBER_URL])
    def test_an_auditor_can_neither_open_nor_submit_a_request_page(self, login, auditor, contracts, url):
        client = login(auditor)

        assert client.get(url).status_code == 403
        assert client.post(url, {"product": "BTC", "limit_btc": "5", "reason": "r"}).status_code == 403
        assert not ChangeRequest.objects.exists()

    def test_an_auditor_sees_no_request_buttons_on_the_lists(self, login, auditor, db):
        page = login(auditor).get("/admin/trading_risk/positionlimit/").content.decode()

        assert LIMIT_URL not in page

    def test_an_auditor_cannot_record_a_broker_review(self, login, auditor, risk_officer, second_risk_officer, broker):
        member = make_member(broker, risk_officer, second_risk_officer)
        client = login(auditor)

        assert client.get(review_url(member)).status_code == 403
        assert client.post(review_url(member), {"net_capital_btc": "1", "notes": "x"}).status_code == 403
        assert not BrokerLimitReview.objects.exists()
        assert review_url(member) not in client.get("/admin/trading_risk/brokermember/").content.decode()

    def test_staff_without_any_permission_are_refused(self, login, broker, risk_officer, second_risk_officer):
        member = make_member(broker, risk_officer, second_risk_officer)
        client = login(make_staff(roles=()))

        for url in (LIMIT_URL, EXEMPTION_URL, MEMBER_URL, review_url(member)):
            assert client.get(url).status_code == 403, url

    def test_a_password_without_the_second_factor_requests_nothing(self, client, risk_officer, contracts):
        client.force_login(risk_officer)

        response = client.post(LIMIT_URL, {"product": "BTC", "limit_btc": "5", "reason": "r"})

        assert response.status_code == 302
        assert not ChangeRequest.objects.exists()


class TestTheAdminIndex:
    def test_links_the_margin_dashboard_for_those_who_may_read_it(self, login, risk_officer, auditor):
        for user in (risk_officer, auditor):
            page = login(user).get("/admin/").content.decode()

            assert 'href="/admin/margin/">Margin dashboard</a>' in page, user

    def test_hides_the_link_from_staff_without_the_permission(self, login, db):
        page = login(make_staff(perms=("trading_risk.view_alert",))).get("/admin/")

        assert page.status_code == 200
        assert "/admin/margin/" not in page.content.decode()
        assert 'href="/admin/trading_risk/alert/dashboard/"' in page.content.decode()
