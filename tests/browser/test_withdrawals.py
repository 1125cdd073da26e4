import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice import health
from backoffice.audit import Actor
from tests import factories
from tests.withdrawals.conftest import make_withdrawal
from trading_risk import services as trading_services
from withdrawals import services
from withdrawals.models import Withdrawal

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def large_withdrawal():
    """1,200 BTC: held, then in review with the customer's identity confirmed; its tier needs two approvers."""
    health.record_heartbeat(now=timezone.now())
    prices = [
        (i, trading_services.AssetPriceIn(asset=asset, usd=Decimal(usd), at=factories.NOW - timedelta(days=60)))
        for i, (asset, usd) in enumerate([("BTC", "50000"), ("USDT", "1")])
    ]
    trading_services.record_prices(asset_prices=prices, instrument_prices=[], actor=factories.SYSTEM, now=factories.NOW)
    account = factories.make_account(customer=factories.make_customer(kyc_level=3, name="Rich Example"))
    withdrawal = make_withdrawal(account, amount="1200", request_id="w-large-1")
    assert withdrawal.status == Withdrawal.Status.HELD
    services.release_due_holds(now=withdrawal.hold_until)
    caller = factories.make_staff(roles=("risk officer",), username="carol")
    services.record_identity_confirmation(
        withdrawal=withdrawal, method="PHONE", note="called back", actor=Actor.staff(caller), now=timezone.now()
    )
    withdrawal.refresh_from_db()
    assert (withdrawal.status, withdrawal.required_approvals) == (Withdrawal.Status.PENDING_REVIEW, 2)
    return withdrawal


def approve_on_the_review_page(page, withdrawal, reason: str) -> None:
    page.goto("/admin/withdrawals/withdrawal/")
    page.locator("#result_list").get_by_role("link", name=withdrawal.request_id, exact=True).click()
    expect(page.locator("p.status")).to_contain_text("Pending review — 1200 BTC on BTC")
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Approve", exact=True).click()


def test_a_tier_two_withdrawal_needs_a_reason_and_two_different_approvers(new_page, large_withdrawal):
    withdrawal = large_withdrawal
    first = factories.make_staff(roles=("risk officer",), username="rita")
    second = factories.make_staff(roles=("risk officer",), username="raj")
    page = new_page(first)

    page.goto(f"/admin/withdrawals/withdrawal/{withdrawal.pk}/change/")
    expect(page.locator("tr").filter(has_text="approvals")).to_contain_text("0 of 2")
    page.get_by_role("button", name="Approve", exact=True).click()  # no reason: the browser keeps the form
    assert page.get_by_label("Reason").evaluate("el => el.validity.valueMissing")
    assert not withdrawal.approvals.exists()

    approve_on_the_review_page(page, withdrawal, "customer called back, known destination")

    expect(page.locator(".messagelist")).to_contain_text(f"Withdrawal {withdrawal.request_id} is now pending review.")
    expect(page.locator("tr").filter(has_text="approvals")).to_contain_text("1 of 2")
    withdrawal.refresh_from_db()
    assert withdrawal.status == Withdrawal.Status.PENDING_REVIEW

    page.get_by_label("Reason").fill("approving again")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator(".messagelist .error")).to_be_visible()  # the same person cannot be the second approver
    assert withdrawal.approvals.count() == 1

    other = new_page(second)
    approve_on_the_review_page(other, withdrawal, "second pair of eyes: travel rule not needed, address clean")

    expect(other.locator(".messagelist")).to_contain_text(
        re.compile(rf"Withdrawal {withdrawal.request_id} is now (approved|paid out)\.")
    )
    withdrawal.refresh_from_db()
    assert withdrawal.status in (Withdrawal.Status.APPROVED, Withdrawal.Status.SENT)
    assert set(withdrawal.approvals.values_list("approver__username", flat=True)) == {"rita", "raj"}
