from datetime import date

import pytest
from django.urls import reverse

from kyc import services
from kyc.models import Decision, KycCase, ScreeningHit
from tests.factories import NOW, SYSTEM, make_customer
from tests.kyc.builders import actor, add_document, ofac_row, write_ofac

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(desk):
    customer = make_customer(name="Anna Example", date_of_birth=date(1990, 1, 1))
    case = services.open_case(customer=customer, requested_level=1, actor=actor(desk), now=NOW)
    add_document(case, desk, "ID_DOCUMENT", name="passport.pdf")
    return case


@pytest.fixture
def hit(tmp_path):
    services.load_ofac_list(
        source="OFAC_SDN",
        primary=write_ofac(
            tmp_path / "sdn.csv", [ofac_row(7, "EXAMPLE, Anna", remarks="DOB 1990; nationality Germany.")]
        ),
        actor=SYSTEM,
        now=NOW,
    )
    return services.screen_customer(customer=make_customer(name="Anna Example"), actor=SYSTEM, now=NOW)[0]


class TestCaseQueue:
    def test_shows_backlog_and_age(self, login, desk, case):
        response = login(desk).get(reverse("admin:kyc_kyccase_changelist") + "?queue=open")

        assert response.status_code == 200
        assert b"Backlog:</strong> 1 open case(s)" in response.content
        assert b"Anna Example" in response.content

    def test_shows_the_assignee_and_filters_my_cases(self, login, desk, compliance, case):
        services.assign_case(case=case, assignee=compliance, actor=actor(desk), now=NOW)
        url = reverse("admin:kyc_kyccase_changelist")

        everyone = login(compliance).get(url).content.decode()
        mine_for_desk = login(desk).get(url + "?mine=1").content.decode()

        assert '<td class="field-assignee">carl</td>' in everyone
        assert "Anna Example" not in mine_for_desk


class TestCasePage:
    def test_shows_documents_data_and_checklist(self, login, desk, case):
        response = login(desk).get(reverse("admin:kyc_kyccase_change", args=[case.pk]))

        content = response.content.decode()
        assert response.status_code == 200
        assert reverse("admin:kyc_document_file", args=[case.documents.get().pk]) in content
        assert "Anna Example" in content
        assert "ID document or passport" in content
        assert "Approve" in content

    def test_serves_a_document_with_its_sniffed_type(self, login, desk, case):
        response = login(desk).get(reverse("admin:kyc_document_file", args=[case.documents.get().pk]))

        assert (response.status_code, response["Content-Type"], response["X-Content-Type-Options"]) == (
            200,
            "application/pdf",
            "nosniff",
        )

    def test_one_click_approval_with_a_reason_decides_the_case(self, login, desk, case):
        response = login(desk).post(
            reverse("admin:kyc_kyccase_change", args=[case.pk]),
            {"action": "decide", "outcome": "APPROVE", "reason": "ID verified"},
            follow=True,
        )

        case.refresh_from_db()
        assert case.status == KycCase.Status.APPROVED
        assert b"signed" in response.content

    def test_a_decision_without_a_reason_is_refused(self, login, desk, case):
        response = login(desk).post(
            reverse("admin:kyc_kyccase_change", args=[case.pk]),
            {"action": "decide", "outcome": "APPROVE", "reason": ""},
            follow=True,
        )

        assert b"reason" in response.content
        assert Decision.objects.count() == 0

    def test_uploading_an_executable_shows_the_refusal(self, login, desk, case):
        from tests.kyc.builders import EXE, upload

        response = login(desk).post(
            reverse("admin:kyc_kyccase_change", args=[case.pk]),
            {"action": "upload", "document_type": "ID_DOCUMENT", "named_person": "", "file": upload("scan.pdf", EXE)},
            follow=True,
        )

        assert b"not an accepted document type" in response.content
        assert case.documents.count() == 1

    def test_an_auditor_sees_the_case_but_cannot_decide(self, login, auditor, case):
        client = login(auditor)

        page = client.get(reverse("admin:kyc_kyccase_change", args=[case.pk]))
        client.post(
            reverse("admin:kyc_kyccase_change", args=[case.pk]),
            {"action": "decide", "outcome": "APPROVE", "reason": "x"},
        )

        assert page.status_code == 200
        assert b'value="APPROVE"' not in page.content
        assert Decision.objects.count() == 0


class TestHitPage:
    def test_the_queue_opens_on_open_hits(self, login, compliance, hit):
        client = login(compliance)

        response = client.get(reverse("admin:kyc_screeninghit_changelist"), follow=True)

        assert response.redirect_chain[-1][0].endswith("?status__exact=OPEN")
        assert b"Anna EXAMPLE" in response.content

    def test_shows_the_list_entry_and_why_it_scored(self, login, compliance, hit):
        response = login(compliance).get(reverse("admin:kyc_screeninghit_change", args=[hit.pk]))

        assert response.status_code == 200
        assert b"year of birth" not in response.content  # the customer has no date of birth
        assert b"EXAMPLE, Anna" in response.content
        assert b"name 100.0" in response.content

    def test_one_click_false_match_with_a_reason(self, login, compliance, hit):
        login(compliance).post(
            reverse("admin:kyc_screeninghit_change", args=[hit.pk]), {"verdict": "false", "reason": "different person"}
        )

        hit.refresh_from_db()
        assert (hit.status, hit.decision_reason) == (ScreeningHit.Status.FALSE_MATCH, "different person")

    def test_a_hit_decision_without_a_reason_is_refused(self, login, compliance, hit):
        login(compliance).post(reverse("admin:kyc_screeninghit_change", args=[hit.pk]), {"verdict": "false"})

        hit.refresh_from_db()
        assert hit.status == ScreeningHit.Status.OPEN


class TestOtherPages:
    @pytest.mark.parametrize(
        "name",
        [
            "kyc_screeninghit_changelist",
            "kyc_listentry_changelist",
            "kyc_sanctionslist_changelist",
            "kyc_sanctionedaddress_changelist",
            "kyc_requirement_changelist",
            "kyc_decision_changelist",
            "kyc_kyccase_open",
            "kyc_sanctionedaddress_add",
        ],
    )
    def test_renders_for_compliance(self, login, compliance, name):
        assert login(compliance).get(reverse(f"admin:{name}"), follow=True).status_code == 200

    def test_staff_add_a_high_risk_address(self, login, compliance):
        login(compliance).post(
            reverse("admin:kyc_sanctionedaddress_add"),
            {"network": "ETH", "address": "0x" + "AB" * 20, "reason": "reported scam"},
        )

        from kyc.selectors import address_risk

        assert address_risk(network="ARB", address="0x" + "ab" * 20).reason == "reported scam"

    def test_the_constructor_proposes_a_requirement_for_maker_checker(self, login, compliance):
        login(compliance).post(
            reverse("admin:kyc_requirement_add"),
            {
                "track": "INDIVIDUAL",
                "level": 2,
                "kind": "DOCUMENT",
                "code": "PROOF_OF_ADDRESS",
                "label": "Proof of address",
                "active": "on",
                "reason": "new AML policy",
            },
        )

        from backoffice.models import ChangeRequest

        summary = ChangeRequest.objects.get().summary
        assert summary == "Add KYC requirement INDIVIDUAL L2 DOCUMENT PROOF_OF_ADDRESS (active)"
