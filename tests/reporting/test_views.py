from datetime import date

import pytest
from django.utils import timezone

from reporting import services
from reporting.models import Report
from tests.factories import SYSTEM, make_staff


@pytest.fixture
def report(db):
    return services.generate_large_trader_report(day=date(2026, 3, 1), actor=SYSTEM, now=timezone.now())


class TestReportPages:
    def test_a_visitor_who_is_not_logged_in_is_sent_to_the_staff_login(self, client, report):
        response = client.get(f"/reporting/{report.pk}.csv")

        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")

    def test_a_password_only_session_without_the_second_factor_is_refused(self, client, report, auditor):
        client.force_login(auditor)

        response = client.get(f"/reporting/{report.pk}.csv")

        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")

    def test_an_auditor_sees_the_archive_and_downloads_both_formats(self, login, report, auditor):
        client = login(auditor)

        listing = client.get("/reporting/")
        as_csv = client.get(f"/reporting/{report.pk}.csv")
        as_xlsx = client.get(f"/reporting/{report.pk}.xlsx")

        assert listing.status_code == 200
        assert b"Large-trader report" in listing.content
        assert as_csv["Content-Type"].startswith("text/csv")
        assert as_csv.content.decode().startswith("Report day,")
        assert as_xlsx.content[:2] == b"PK"
        assert "large-trader-2026-03-01-v1.xlsx" in as_xlsx["Content-Disposition"]

    def test_an_auditor_may_not_generate_a_report(self, login, auditor, db):
        response = login(auditor).post("/reporting/generate/", {"day": "2026-03-01"})

        assert response.status_code == 403
        assert not Report.objects.exists()

    def test_a_risk_officer_generates_a_day_which_adds_a_version(self, login, risk_officer, report):
        response = login(risk_officer).post("/reporting/generate/", {"day": "2026-03-01"})

        assert response.status_code == 302
        assert list(Report.objects.values_list("version", "generated_by")) == [(2, "rita"), (1, "system:tests")]

    def test_staff_without_a_role_cannot_read_reports(self, login, report):
        response = login(make_staff()).get(f"/reporting/{report.pk}.csv")

        assert response.status_code == 403

    def test_a_future_day_cannot_be_generated(self, login, risk_officer, db):
        login(risk_officer).post("/reporting/generate/", {"day": "2999-01-01"})

        assert not Report.objects.exists()
