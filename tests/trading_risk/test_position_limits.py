from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backoffice import approvals
from backoffice.audit import Actor
from backoffice.errors import InvalidInput
from backoffice.models import OperationsLogEntry
from tests.factories import make_account, make_customer
from tests.trading_risk.conftest import make_instrument, set_price
from trading_risk import position_limits, pretrade, services
from trading_risk.models import Alert, BrokerMember, HedgingExemption, Position, PositionLimit
from trading_risk.selectors import Unpriced


@pytest.fixture
def contracts(db):
    """BTC and ETH perpetuals and an ETH future expiring next month; ETH at 1/25 BTC."""
    now = timezone.now()
    set_price("BTC", "100000", at=now - timedelta(hours=1))
    set_price("ETH", "4000", at=now - timedelta(hours=1))
    make_instrument("BTCUSDT-PERP", base="BTC", kind="PERPETUAL")
    make_instrument("ETHUSDT-PERP", base="ETH", kind="PERPETUAL")
    return {"ETH-FUT": make_future("ETH-FUT", base="ETH", expires_at=_next_month(now))}


def make_future(symbol, *, base, expires_at):
    instrument, _ = services.upsert_instrument(
        symbol=symbol,
        data=services.InstrumentData(
            kind="FUTURE", base=base, quote="USDT", listed_at=expires_at - timedelta(days=90), expires_at=expires_at
        ),
        actor=Actor.system("tests"),
        now=timezone.now(),
    )
    return instrument


def _next_month(now):
    return (now.replace(day=1) + timedelta(days=40)).replace(day=20, hour=8, minute=0, second=0, microsecond=0)


def hold(account, symbol, qty, *, side="LONG", margin="0"):
    from trading_risk.models import Instrument

    now = timezone.now()
    return Position.objects.create(
        account=account,
        instrument=Instrument.objects.get(symbol=symbol),
        side=side,
        qty=Decimal(qty),
        entry_price=Decimal(1),
        margin=Decimal(margin),
        at=now,
        received_at=now,
    )


def check(account, symbol, qty, *, side="buy", reduce_only=False, now=None):
    order = pretrade.Order(
        account_id=account.external_id,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        price=Decimal(1),
        reduce_only=reduce_only,
    )
    return pretrade.check_order(order, now=now or timezone.now())


@pytest.fixture
def decide(risk_officer, second_risk_officer):
    """Request a change as one risk officer and approve it as another."""

    def run(action, payload, reason="hedge of a spot book"):
        change = approvals.request_change(
            action=action, payload=payload, actor=Actor.staff(risk_officer), reason=reason, now=timezone.now()
        )
        return approvals.approve_change(
            change_request=change, actor=Actor.staff(second_risk_officer), reason="ok", now=timezone.now()
        )

    return run


@pytest.fixture
def customer(contracts):
    return make_customer(external_id="BIG")


class TestAggregatedLimit:
    def test_positions_of_all_the_customers_accounts_count_towards_the_default_5000_btc(self, customer):
        first, second = make_account(customer=customer), make_account(customer=customer)
        hold(first, "BTCUSDT-PERP", "3000")
        hold(second, "BTCUSDT-PERP", "1999")

        assert check(first, "BTCUSDT-PERP", "1") == {"allowed": True, "reasons": []}
        assert check(second, "BTCUSDT-PERP", "1.5") == {"allowed": False, "reasons": ["position_limit"]}

    def test_another_customers_positions_do_not_count(self, customer):
        hold(make_account(), "BTCUSDT-PERP", "4999")

        assert check(make_account(customer=customer), "BTCUSDT-PERP", "1000")["allowed"] is True

    def test_positions_are_valued_in_btc_at_the_latest_reference_prices(self, customer):
        account = make_account(customer=customer)
        hold(account, "ETHUSDT-PERP", "124000")  # 4,960 BTC at 4,000 / 100,000

        assert check(account, "ETHUSDT-PERP", "1000")["allowed"] is True  # 5,000 BTC: at the limit
        assert check(account, "ETHUSDT-PERP", "1001")["reasons"] == ["position_limit"]

    def test_a_perpetual_and_a_future_of_one_product_are_aggregated(self, customer):
        account = make_account(customer=customer)
        hold(account, "ETH-FUT", "100000")

        assert check(account, "ETHUSDT-PERP", "25001")["reasons"] == ["position_limit"]

    def test_orders_that_reduce_the_position_and_reduce_only_orders_pass_over_the_limit(self, customer):
        account = make_account(customer=customer)
        hold(account, "BTCUSDT-PERP", "6000")

        assert check(account, "BTCUSDT-PERP", "10", side="sell")["allowed"] is True
        assert check(account, "BTCUSDT-PERP", "10", reduce_only=True)["allowed"] is True
        assert check(account, "BTCUSDT-PERP", "10")["reasons"] == ["position_limit"]

    def test_a_short_position_counts_like_a_long_one(self, customer):
        account = make_account(customer=customer)
        hold(account, "BTCUSDT-PERP", "5000", side="SHORT")

        assert check(account, "BTCUSDT-PERP", "1", side="sell")["reasons"] == ["position_limit"]
        assert check(account, "BTCUSDT-PERP", "1")["allowed"] is True

    def test_spot_orders_are_not_position_limited(self, customer):
        make_instrument("BTCUSDT", base="BTC")

        assert check(make_account(customer=customer), "BTCUSDT", "100000")["allowed"] is True

    def test_an_unpriceable_product_is_refused_as_bad_input_not_valued_at_zero(self, customer):
        make_instrument("NEWUSDT-PERP", base="NEW", kind="PERPETUAL")

        with pytest.raises(Unpriced) as refused:
            check(make_account(customer=customer), "NEWUSDT-PERP", "1")

        assert refused.value.status == 400

    def test_an_order_closing_an_unpriceable_position_needs_no_price(self, customer):
        make_instrument("NEWUSDT-PERP", base="NEW", kind="PERPETUAL")
        account = make_account(customer=customer)
        hold(account, "NEWUSDT-PERP", "10")

        assert check(account, "NEWUSDT-PERP", "4", side="sell") == {"allowed": True, "reasons": []}


class TestSpecificLimits:
    def test_a_product_limit_applies_only_once_a_second_person_approves_it(self, customer, risk_officer):
        account = make_account(customer=customer)
        change = approvals.request_change(
            action="position_limit.set",
            payload={"product": "BTC", "limit_btc": "100"},
            actor=Actor.staff(risk_officer),
            reason="thin market",
            now=timezone.now(),
        )
        assert check(account, "BTCUSDT-PERP", "101")["allowed"] is True

        with pytest.raises(approvals.SelfApproval):
            approvals.approve_change(
                change_request=change, actor=Actor.staff(risk_officer), reason="", now=timezone.now()
            )

        assert not PositionLimit.objects.exists()

    def test_an_approved_product_limit_replaces_the_default_and_is_audited(self, customer, decide):
        account = make_account(customer=customer)

        decide("position_limit.set", {"product": "BTC", "limit_btc": "100"})

        assert check(account, "BTCUSDT-PERP", "100")["allowed"] is True
        assert check(account, "BTCUSDT-PERP", "101")["reasons"] == ["position_limit"]
        assert OperationsLogEntry.objects.filter(action="position_limit.set").count() == 1

    def test_a_new_limit_ends_the_previous_one_and_removing_it_restores_the_default(self, customer, decide):
        account = make_account(customer=customer)
        decide("position_limit.set", {"product": "BTC", "limit_btc": "100"})
        decide("position_limit.set", {"product": "BTC", "limit_btc": "200"})

        assert check(account, "BTCUSDT-PERP", "150")["allowed"] is True
        assert PositionLimit.objects.filter(ended_at__isnull=True).count() == 1

        decide("position_limit.set", {"product": "BTC", "limit_btc": ""})

        assert check(account, "BTCUSDT-PERP", "4000")["allowed"] is True
        assert not PositionLimit.objects.filter(ended_at__isnull=True).exists()

    def test_a_tier_for_the_customers_type_is_stricter_than_the_general_limit(self, customer, decide):
        corporate = make_customer(type="CORPORATE")
        decide("position_limit.set", {"product": "BTC", "limit_btc": "1000"})
        decide("position_limit.set", {"product": "BTC", "customer_type": "INDIVIDUAL", "limit_btc": "100"})

        assert check(make_account(customer=customer), "BTCUSDT-PERP", "101")["reasons"] == ["position_limit"]
        assert check(make_account(customer=corporate), "BTCUSDT-PERP", "999")["allowed"] is True

    def test_a_contract_month_limit_applies_to_that_months_future_only(self, customer, contracts, decide):
        month = contracts["ETH-FUT"].expires_at.strftime("%Y-%m")
        account = make_account(customer=customer)
        decide("position_limit.set", {"product": "ETH", "contract_month": month, "limit_btc": "40"})

        assert check(account, "ETH-FUT", "1001")["reasons"] == ["position_limit"]  # 40.04 BTC
        assert check(account, "ETH-FUT", "1000")["allowed"] is True
        assert check(account, "ETHUSDT-PERP", "1001")["allowed"] is True

    def test_in_the_delivery_month_the_limit_is_half_by_default(self, customer):
        now = timezone.now().replace(day=10, hour=12)
        make_future("BTC-DELIVERY", base="BTC", expires_at=now.replace(day=20))
        account = make_account(customer=customer)

        assert check(account, "BTC-DELIVERY", "2500", now=now)["allowed"] is True
        assert check(account, "BTC-DELIVERY", "2501", now=now)["reasons"] == ["position_limit"]
        assert check(account, "BTC-DELIVERY", "2501", now=now - timedelta(days=31))["allowed"] is True

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"product": "DOGE", "limit_btc": "10"}, "product"),
            ({"product": "BTC", "limit_btc": "-1"}, "limit_btc"),
            ({"product": "BTC", "limit_btc": "10", "delivery_month_limit_btc": "20"}, "delivery_month_limit_btc"),
            ({"product": "BTC", "limit_btc": "10", "contract_month": "March"}, "contract_month"),
            ({"product": "BTC", "limit_btc": "10", "customer_type": "ROBOT"}, "customer_type"),
            ({"product": "BTC", "limit_btc": ""}, "limit_btc"),  # nothing to remove
        ],
    )
    def test_a_bad_limit_request_is_refused_before_anyone_approves(self, contracts, risk_officer, payload, field):
        with pytest.raises(InvalidInput) as refused:
            approvals.request_change(
                action="position_limit.set",
                payload=payload,
                actor=Actor.staff(risk_officer),
                reason="r",
                now=timezone.now(),
            )

        assert refused.value.details[0]["field"] == field


class TestHedgingExemptions:
    def grant(self, decide, account, *, until, product=""):
        payload = {"account_id": account.external_id, "product": product, "expires_at": until.isoformat()}
        return decide("hedging_exemption.grant", payload, reason="hedges the OTC desk's spot inventory")

    def test_an_exempt_account_may_exceed_the_limit_and_its_positions_do_not_count(self, customer, decide):
        hedger, other = make_account(customer=customer), make_account(customer=customer)
        hold(hedger, "BTCUSDT-PERP", "4500")
        self.grant(decide, hedger, until=timezone.now() + timedelta(days=30))

        assert check(hedger, "BTCUSDT-PERP", "10000")["allowed"] is True
        assert check(other, "BTCUSDT-PERP", "4000")["allowed"] is True

    def test_the_exemption_records_who_asked_who_approved_and_why(self, customer, decide, risk_officer):
        account = make_account(customer=customer)

        self.grant(decide, account, until=timezone.now() + timedelta(days=30))

        exemption = HedgingExemption.objects.get()
        assert (exemption.requested_by, exemption.approved_by) == ("rita", "raj")
        assert exemption.reason == "hedges the OTC desk's spot inventory"
        assert OperationsLogEntry.objects.filter(action="hedging_exemption.grant").exists()

    def test_an_expired_exemption_no_longer_applies(self, customer, decide):
        account = make_account(customer=customer)
        self.grant(decide, account, until=timezone.now() + timedelta(days=1))
        now = timezone.now()
        HedgingExemption.objects.update(starts_at=now - timedelta(days=2), expires_at=now - timedelta(seconds=1))

        assert check(account, "BTCUSDT-PERP", "5001")["reasons"] == ["position_limit"]

    def test_an_exemption_for_one_product_does_not_lift_another(self, customer, decide):
        account = make_account(customer=customer)
        self.grant(decide, account, until=timezone.now() + timedelta(days=30), product="ETH")

        assert check(account, "ETHUSDT-PERP", "1000000")["allowed"] is True
        assert check(account, "BTCUSDT-PERP", "5001")["reasons"] == ["position_limit"]

    def test_a_revoked_exemption_ends_at_once_and_is_audited(self, customer, decide, risk_officer):
        account = make_account(customer=customer)
        self.grant(decide, account, until=timezone.now() + timedelta(days=30))

        position_limits.revoke_exemption(
            exemption=HedgingExemption.objects.get(),
            actor=Actor.staff(risk_officer),
            reason="hedge unwound",
            now=timezone.now(),
        )

        assert check(account, "BTCUSDT-PERP", "5001")["reasons"] == ["position_limit"]
        assert OperationsLogEntry.objects.filter(action="hedging_exemption.revoke").exists()

    def test_an_exemption_must_expire_in_the_future(self, customer, risk_officer):
        with pytest.raises(InvalidInput):
            approvals.request_change(
                action="hedging_exemption.grant",
                payload={"account_id": make_account(customer=customer).external_id, "expires_at": "2020-01-01T00:00Z"},
                actor=Actor.staff(risk_officer),
                reason="hedge",
                now=timezone.now(),
            )


class TestBrokerMembers:
    @pytest.fixture
    def member(self, contracts, decide):
        broker = make_customer(external_id="BROKER", type="CORPORATE", name="Broker Ltd")
        payload = {"customer_id": "BROKER", "member_number": "M-007", "net_capital_btc": "800", "limit_btc": "500"}
        decide("broker_member.set", payload, reason="new member")
        return BrokerMember.objects.get(customer=broker)

    def test_a_members_limit_is_set_against_its_net_capital(self, contracts, risk_officer):
        make_customer(external_id="SMALL", type="CORPORATE")
        payload = {"customer_id": "SMALL", "member_number": "M-1", "net_capital_btc": "100", "limit_btc": "101"}

        with pytest.raises(InvalidInput) as refused:
            approvals.request_change(
                action="broker_member.set",
                payload=payload,
                actor=Actor.staff(risk_officer),
                reason="r",
                now=timezone.now(),
            )

        assert refused.value.details[0]["field"] == "limit_btc"

    def test_the_member_limit_caps_the_members_own_positions(self, member):
        account = make_account(customer=member.customer)

        assert check(account, "BTCUSDT-PERP", "500")["allowed"] is True
        assert check(account, "BTCUSDT-PERP", "501")["reasons"] == ["position_limit"]

    def test_the_first_review_is_due_14_days_after_the_limit_is_set(self, member):
        assert member.next_review_date == timezone.now().date() + timedelta(days=14)

    def test_an_overdue_review_raises_one_alert_per_member_and_due_date(self, member):
        later = timezone.now() + timedelta(days=15)

        opened = position_limits.raise_review_alerts(now=later)
        again = position_limits.raise_review_alerts(now=later + timedelta(days=1))

        assert (opened, again) == (1, 0)
        alert = Alert.objects.get(rule="broker_limit_review_due")
        assert alert.customer == member.customer

    def test_a_review_due_today_is_not_yet_overdue(self, member):
        due = timezone.now() + timedelta(days=14)

        assert position_limits.raise_review_alerts(now=due) == 0

    def test_recording_a_review_moves_the_next_review_date_and_is_audited(self, member, risk_officer):
        later = timezone.now() + timedelta(days=15)

        review = position_limits.record_broker_review(
            member=member,
            net_capital_btc=Decimal(400),
            notes="capital fell",
            actor=Actor.staff(risk_officer),
            now=later,
        )

        member.refresh_from_db()
        assert member.next_review_date == later.date() + timedelta(days=14)
        assert review.within_capital is False  # 500 BTC limit against 400 BTC of capital
        assert position_limits.raise_review_alerts(now=later) == 0
        assert OperationsLogEntry.objects.filter(action="broker_member.review").exists()

    def test_only_staff_with_the_review_permission_may_record_a_review(self, member, auditor):
        with pytest.raises(approvals.NotAllowed):
            position_limits.record_broker_review(
                member=member, net_capital_btc=Decimal(1), notes="", actor=Actor.staff(auditor), now=timezone.now()
            )


class TestSchedule:
    def test_the_daily_review_check_is_a_registered_beat_task(self, settings):
        from backoffice.celery import app

        entry = settings.CELERY_BEAT_SCHEDULE["broker-limit-reviews"]

        assert entry["task"] in app.tasks
