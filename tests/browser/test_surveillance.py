import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from tests import factories
from trading_risk.models import Alert
from trading_risk.services import open_alert

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def make_alert(n: int, *, now) -> Alert:
    account = factories.make_account(external_id=f"ACC{n}")
    alert, _ = open_alert(
        rule="self_trade",
        severity="GENERAL",
        customer=account.customer,
        account=account,
        symbol="ETHUSDT",
        summary=f"finding {n}",
        dedup_key=f"browser-{n}",
        actor=factories.SYSTEM,
        now=now,
        details={"accounts": [account.pk]},
    )
    return alert


def run_action(page, alert: Alert, action: str) -> None:
    """Tick the alert's row in the queue, choose the action and run it (the admin's JavaScript counts the ticks)."""
    page.goto("/admin/trading_risk/alert/")
    page.locator("#result_list tbody tr").filter(has_text=alert.summary).locator("input.action-select").check()
    expect(page.locator(".action-counter")).to_have_text("1 of 2 selected")
    page.locator("select[name=action]").select_option(action)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text(f"1 selected: #{alert.pk}")).to_be_visible()


def test_an_alert_is_assigned_then_closed_with_a_disposition_and_a_reason_and_shows_on_the_dashboard(new_page):
    now = timezone.now()
    alert, other = make_alert(1, now=now), make_alert(2, now=now)
    lead = factories.make_staff(roles=("risk officer",), username="rita")
    analyst = factories.make_staff(roles=("risk officer",), username="raj")

    page = new_page(lead)
    run_action(page, alert, "assign")
    page.get_by_label("Assignee").select_option(label="raj")
    page.get_by_role("button", name="Submit").click()

    expect(page.locator(".messagelist")).to_contain_text(f"Alert #{alert.pk} assigned.")
    analyst = User.objects.get(pk=analyst.pk)
    assert analyst.has_perm("trading_risk.work_alert", alert)
    assert not analyst.has_perm("trading_risk.work_alert", other)

    page = new_page(analyst)
    run_action(page, alert, "close_with_disposition")
    page.get_by_label("Disposition").select_option(label="False positive")
    page.get_by_role("button", name="Submit").click()  # no reason: the browser keeps the form
    assert page.get_by_label("Reason").evaluate("el => el.validity.valueMissing")
    page.get_by_label("Reason").fill("market maker hedging between its own accounts")
    page.get_by_role("button", name="Submit").click()

    expect(page.locator(".messagelist")).to_contain_text(f"Alert #{alert.pk} closed.")
    alert.refresh_from_db()
    assert (alert.status, alert.disposition, alert.closing_reason, alert.closed_by) == (
        Alert.Status.CLOSED,
        Alert.Disposition.FALSE_POSITIVE,
        "market maker hedging between its own accounts",
        "raj",
    )
    other.refresh_from_db()
    assert other.status == Alert.Status.OPEN

    page.goto("/admin/trading_risk/alert/dashboard/")
    chart = page.get_by_role("img", name="alerts per day by rule")
    expect(chart).to_be_visible()
    bar = chart.locator("rect")
    expect(bar).to_have_count(1)  # both alerts: one rule, one day
    box = bar.bounding_box()
    assert box is not None
    assert box["height"] > 100  # the tallest day fills the chart
    bar.click()
    expect(page).to_have_url(re.compile(r"/admin/trading_risk/alert/\?rule=self_trade&opened_at__date="))
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
