from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backoffice.audit import Actor
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, SYSTEM, make_account, make_customer
from trading_risk import cases, detectors
from trading_risk.models import Alert, Case, OrderCancelLadder, RuleSnooze, WarningLetter
from trading_risk.services import open_alert


def make_alert(account, n, rule="self_trade"):
    alert, _ = open_alert(
        rule=rule,
        severity="GENERAL",
        customer=account.customer,
        account=account,
        symbol="ETHUSDT",
        summary=f"finding {n}",
        dedup_key=f"k{n}-{account.pk}",
        actor=SYSTEM,
        now=timezone.now(),
        details={
            "window_start": (NOW - timedelta(days=1)).isoformat(),
            "window_end": NOW.isoformat(),
            "accounts": [account.pk],
        },
    )
    return alert


@pytest.fixture
def account(market):
    return make_account(external_id="ACC1")


class TestAlertQueue:
    def test_the_queue_lists_alerts_with_a_fixed_number_of_queries(self, login, risk_officer, account):
        for n in range(3):
            make_alert(account, n)
        client = login(risk_officer)
        client.get("/admin/trading_risk/alert/")

        with CaptureQueriesContext(connection) as few:
            client.get("/admin/trading_risk/alert/?rule=self_trade&status__exact=OPEN")
        for n in range(3, 20):
            make_alert(make_account(), n)
        with CaptureQueriesContext(connection) as many:
            response = client.get("/admin/trading_risk/alert/?rule=self_trade&status__exact=OPEN")

        assert response.status_code == 200
        assert len(many) == len(few)

    def test_pages_render_for_risk_officers(self, login, risk_officer, account):
        alert = make_alert(account, 1)
        case = cases.open_case(alerts=[alert], title="", actor=Actor.staff(risk_officer), now=timezone.now())
        OrderCancelLadder.objects.create(account=account, symbol="ETHUSDT", step=2, last_hit_at=NOW, updated_at=NOW)
        client = login(risk_officer)

        for url in (
            "/admin/trading_risk/alert/dashboard/",
            f"/admin/trading_risk/alert/{alert.pk}/change/",
            f"/admin/trading_risk/alert/{alert.pk}/trades/",
            f"/admin/trading_risk/case/{case.pk}/change/",
            "/admin/trading_risk/case/",
            "/admin/trading_risk/linkedgroup/",
            "/admin/trading_risk/linkedgroup/add/",
            "/admin/trading_risk/rulesnooze/add/",
            "/admin/trading_risk/tradinghalt/",
            "/admin/trading_risk/tradinghalt/request/",
            "/admin/trading_risk/tradinghalt/margin/",
            "/admin/trading_risk/ordercancelladder/",
            "/admin/trading_risk/announcement/",
            "/admin/trading_risk/detectorrun/",
        ):
            assert client.get(url).status_code == 200, url

    def test_the_dashboard_links_a_chart_bar_to_its_alerts(self, login, risk_officer, account):
        make_alert(account, 1)
        client = login(risk_officer)

        page = client.get("/admin/trading_risk/alert/dashboard/").content.decode()
        link = page.split('<a href="')[1].split('"')[0] if "<rect" in page else ""
        bar_link = next(part.split('"')[0] for part in page.split('<a href="')[1:] if "opened_at__date" in part)
        listing = client.get(bar_link.replace("&amp;", "&"))

        assert link
        assert listing.status_code == 200
        assert "finding 1" in listing.content.decode()

    def test_the_evidence_page_lists_the_trades_that_raised_the_alert(self, login, risk_officer, engine, account):
        from tests.trading_risk.conftest import post, trade

        post(engine, "/api/v1/trades/", [trade(1, "ACC1", "ACC1", qty="1000", symbol="BTCUSDT", price="1")])
        detectors.self_trade(window_end=NOW + timedelta(hours=1), now=NOW)
        alert = Alert.objects.get(rule="self_trade")

        page = login(risk_officer).get(f"/admin/trading_risk/alert/{alert.pk}/trades/")

        assert "T1" in page.content.decode()

    def test_closing_alerts_through_the_admin_action_records_the_disposition(self, login, risk_officer, account):
        alert = make_alert(account, 1)

        login(risk_officer).post(
            "/admin/trading_risk/alert/",
            {
                "action": "close_with_disposition",
                "_selected_action": [alert.pk],
                "apply": "1",
                "disposition": "FALSE_POSITIVE",
                "reason": "market maker hedging",
            },
        )

        alert.refresh_from_db()
        assert (alert.status, alert.disposition) == ("CLOSED", "FALSE_POSITIVE")

    def test_an_auditor_sees_the_queue_but_cannot_work_it(self, login, auditor, account):
        alert = make_alert(account, 1)

        client = login(auditor)
        client.post(
            "/admin/trading_risk/alert/",
            {
                "action": "close_with_disposition",
                "_selected_action": [alert.pk],
                "apply": "1",
                "disposition": "FALSE_POSITIVE",
                "reason": "x",
            },
        )

        alert.refresh_from_db()
        assert alert.status == "OPEN"


class TestCases:
    def test_a_case_records_notes_the_risk_call_and_a_warning_letter(self, login, risk_officer, account):
        alert = make_alert(account, 1)
        case = cases.open_case(
            alerts=[alert], title="self-trading", actor=Actor.staff(risk_officer), now=timezone.now()
        )
        client = login(risk_officer)
        url = f"/admin/trading_risk/case/{case.pk}/change/"

        client.post(url, {"case_action": "note", "text": "customer says it was a bot bug"})
        client.post(url, {"case_action": "call", "outcome": "REACHED", "summary": "warned about self-trading"})
        client.post(url, {"case_action": "letter"})
        client.post(url, {"case_action": "close", "disposition": "WARNED", "reason": "customer warned by phone"})

        case.refresh_from_db()
        alert.refresh_from_db()
        assert (case.notes.count(), case.calls.count(), case.status, alert.disposition) == (1, 1, "CLOSED", "WARNED")
        assert "finding 1" in WarningLetter.objects.get().body
        assert {"case.open", "case.note", "case.call", "case.warning_letter", "case.close", "alert.close"} <= set(
            OperationsLogEntry.objects.values_list("action", flat=True)
        )

    def test_a_case_groups_alerts_of_one_customer_only(self, account, risk_officer):
        other = make_alert(make_account(customer=make_customer()), 2)

        with pytest.raises(cases.MixedCustomers):
            cases.open_case(
                alerts=[make_alert(account, 1), other], title="", actor=Actor.staff(risk_officer), now=timezone.now()
            )

        assert not Case.objects.exists()

    def test_assigning_an_alert_gives_one_person_the_work(self, account, risk_officer, second_risk_officer):
        alert = make_alert(account, 1)

        cases.assign_alert(
            alert=alert, assignee=second_risk_officer, actor=Actor.staff(risk_officer), now=timezone.now()
        )

        assert second_risk_officer.has_perm("trading_risk.work_alert", alert)


class TestSnoozes:
    def test_a_snooze_added_in_the_admin_is_logged_with_its_reason(self, login, risk_officer, account):
        until = (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%d %H:%M:%S")

        login(risk_officer).post(
            "/admin/trading_risk/rulesnooze/add/",
            {
                "account": account.pk,
                "rule": "self_trade",
                "until_0": until[:10],
                "until_1": until[11:],
                "until": until,
                "reason": "known market maker",
            },
        )

        snooze = RuleSnooze.objects.get()
        assert (snooze.rule, snooze.reason) == ("self_trade", "known market maker")
        assert OperationsLogEntry.objects.filter(action="rule.snooze").exists()


class TestAccess:
    def test_staff_without_the_view_permission_cannot_open_the_dashboard_or_evidence(self, login, account):
        from tests.factories import make_staff

        alert = make_alert(account, 1)
        client = login(make_staff(roles=()))

        assert client.get("/admin/trading_risk/alert/dashboard/").status_code == 403
        assert client.get(f"/admin/trading_risk/alert/{alert.pk}/trades/").status_code == 403


class TestEvidence:
    def test_a_ladder_alert_shows_the_order_events_that_crossed_the_line(self, login, risk_officer, engine, account):
        from tests.trading_risk.conftest import order_event, post

        post(engine, "/api/v1/order-events/", [order_event(n, "ACC1") for n in range(500)])
        alert = Alert.objects.get(rule="frequent_order_cancel")

        page = login(risk_officer).get(f"/admin/trading_risk/alert/{alert.pk}/trades/").content.decode()

        assert "E499" in page
        assert "No order events" not in page
