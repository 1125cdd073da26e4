import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice.audit import Actor
from tests import factories
from tests.withdrawals.conftest import BTC_ADDRESS
from withdrawals import wallets
from withdrawals.models import AssetNetwork, Wallet

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
# (days ago, balance): the band is 50 to 200; the latest snapshot is below target.
SNAPSHOTS = [(20, "120"), (10, "150"), (6, "90"), (3, "60"), (1, "40")]


def test_the_wallet_dashboard_draws_the_balance_against_its_band_and_switches_period(new_page):
    operator = factories.make_staff(roles=("operations",), username="opal")
    now = timezone.now()
    wallets.register_wallet(
        name="btc-hot-1",
        asset_network=AssetNetwork.objects.get(asset="BTC", network="BTC"),
        tier=Wallet.Tier.HOT,
        address=BTC_ADDRESS,
        target_balance=Decimal(50),
        max_balance=Decimal(200),
        actor=Actor.staff(operator),
        now=now - timedelta(days=30),
    )
    wallets.record_balances(
        items=[
            wallets.BalanceIn(wallet="btc-hot-1", balance=Decimal(b), at=now - timedelta(days=d)) for d, b in SNAPSHOTS
        ],
        actor=factories.SYSTEM,
        now=now,
    )
    page = new_page(operator)

    page.goto("/admin/withdrawals/wallet/dashboard/")

    expect(page.locator(".messagelist")).to_contain_text("btc-hot-1: below target at 40")
    module = page.locator(".dash .module").filter(has_text="btc-hot-1")
    expect(module.locator(".low")).to_have_text("40")
    assert module.locator(".low").evaluate("el => getComputedStyle(el).color") == "rgb(186, 33, 33)"
    chart = module.get_by_role("img", name="balance against target and maximum over 30 days")
    expect(chart).to_be_visible()
    line = chart.locator("polyline.balance-line")
    box = line.bounding_box()
    assert box is not None
    assert box["width"] > 100  # drawn across the chart …
    assert box["height"] > 10  # … rising and falling
    assert line.evaluate("el => el.points.numberOfItems") == len(SNAPSHOTS)
    for band in ("target-line", "max-line"):
        assert chart.locator(f"polyline.{band}").evaluate("el => el.getBBox().width") > 300  # full width
    expect(module).to_contain_text("5 snapshot(s): 1 below target, 0 above maximum")

    page.get_by_role("link", name="7 days", exact=True).click()

    expect(page).to_have_url(re.compile(r"\?days=7$"))
    expect(module.get_by_role("img", name="balance against target and maximum over 7 days")).to_be_visible()
    assert module.locator("polyline.balance-line").evaluate("el => el.points.numberOfItems") == 3
    expect(module).to_contain_text("3 snapshot(s): 1 below target")
