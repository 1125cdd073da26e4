from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Customer
from backoffice.errors import InvalidInput
from backoffice.models import OperationsLogEntry
from kyc import services
from kyc.models import Decision, Document, KycCase
from tests.factories import NOW, make_customer, make_staff
from tests.kyc.builders import EXE, PDF, actor, add_document, upload

pytestmark = pytest.mark.django_db


def open_case(desk, *, level=1, **customer_fields):
    customer = make_customer(date_of_birth=NOW.date() - timedelta(days=30 * 365), **customer_fields)
    return services.open_case(customer=customer, requested_level=level, actor=actor(desk), now=NOW)


def complete_individual(case, desk, *, level=1):
    add_document(case, desk, "ID_DOCUMENT")
    for check in ("AUTHENTICATOR", "ANTI_PHISHING_CODE", "FACE_MATCH")[: {1: 0, 2: 2, 3: 3}[level]]:
        services.record_check(case=case, check=check, note="seen", actor=actor(desk), now=NOW)
    return case


def decide(case, user, outcome="APPROVE", reason="all in order"):
    return services.decide_case(case=case, outcome=outcome, reason=reason, actor=actor(user), now=NOW)


class TestTwoStageReview:
    def test_level_1_individual_is_decided_by_the_first_review(self, desk):
        case = complete_individual(open_case(desk), desk)

        decide(case, desk)

        case.refresh_from_db()
        customer = Customer.objects.get(pk=case.customer_id)
        assert (case.status, customer.kyc_level, customer.kyc_level_source) == ("APPROVED", 1, "DECIDED")

    def test_level_2_needs_a_second_review_by_compliance(self, desk, compliance):
        case = complete_individual(open_case(desk, level=2), desk, level=2)

        decide(case, desk)
        case.refresh_from_db()
        level_after_first = Customer.objects.get(pk=case.customer_id).kyc_level
        decide(case, compliance)

        case.refresh_from_db()
        level = Customer.objects.get(pk=case.customer_id).kyc_level
        assert (level_after_first, case.status, case.second_reviewer, level) == (0, "APPROVED", compliance, 2)

    def test_corporate_level_1_needs_a_second_review(self, desk):
        case = open_case(desk, type=Customer.Type.MARKET_MAKER)
        services.update_dossier(
            case=case,
            data={
                "authorised_person": "Jane Doe",
                "contact_details": "+1 555",
                "registry_link": "https://registry.example/1",
            },
            actor=actor(desk),
            now=NOW,
        )
        for doc_type in (
            "APPLICATION_FORM",
            "ID_ULTIMATE_CONTROLLER",
            "ID_LARGEST_SHAREHOLDER",
            "BUSINESS_LICENCE",
            "LETTER_OF_UNDERTAKING",
        ):
            add_document(case, desk, doc_type)
        for doc_type in ("ID_AUTHORISED_PERSON", "BOARD_RESOLUTION", "POWER_OF_ATTORNEY"):
            add_document(case, desk, doc_type, named_person="DOE, Jane")

        decide(case, desk)

        case.refresh_from_db()
        assert case.status == KycCase.Status.SECOND_REVIEW

    def test_the_first_reviewer_cannot_do_the_second_review(self, compliance):
        case = complete_individual(open_case(compliance, level=2), compliance, level=2)
        decide(case, compliance)

        with pytest.raises(services.SameReviewer):
            decide(case, compliance)

    def test_the_database_refuses_the_same_person_as_both_reviewers(self, desk):
        case = open_case(desk)

        with pytest.raises(IntegrityError, match="kyc_case_four_eyes"), transaction.atomic():
            KycCase.objects.filter(pk=case.pk).update(first_reviewer=desk, second_reviewer=desk)

    def test_the_desk_cannot_do_the_second_review(self, desk):
        other_desk = make_staff(perms=("kyc.first_review",))
        case = complete_individual(open_case(desk, level=2), desk, level=2)
        decide(case, desk)

        with pytest.raises(services.NotAllowed):
            decide(case, other_desk)

    def test_an_incomplete_dossier_cannot_be_approved(self, desk):
        case = open_case(desk, level=2)
        add_document(case, desk, "ID_DOCUMENT")

        with pytest.raises(services.DossierIncomplete, match="Anti-phishing code set; Authenticator app enrolled"):
            decide(case, desk)

    def test_rejection_closes_the_case_with_its_reason_and_leaves_the_level(self, desk):
        case = open_case(desk)

        decision = decide(case, desk, "REJECT", "document forged")

        case.refresh_from_db()
        assert (case.status, decision.reason, Customer.objects.get(pk=case.customer_id).kyc_level) == (
            "REJECTED",
            "document forged",
            0,
        )

    def test_a_decision_needs_a_reason(self, desk):
        case = complete_individual(open_case(desk), desk)

        with pytest.raises(InvalidInput, match="reason"):
            decide(case, desk, reason="  ")

    def test_an_assigned_case_is_decided_by_its_assignee_only(self, desk, compliance):
        case = complete_individual(open_case(desk), desk)
        services.assign_case(case=case, assignee=compliance, actor=actor(desk), now=NOW)

        with pytest.raises(services.NotAllowed, match="assigned to someone else"):
            decide(case, desk)

    def test_only_one_case_is_open_per_customer(self, desk):
        case = open_case(desk)

        with pytest.raises(services.CaseAlreadyOpen):
            services.open_case(customer=case.customer, requested_level=2, actor=actor(desk), now=NOW)


class TestSendBack:
    def test_sending_back_waits_for_the_customer_and_new_material_reopens_the_case(self, desk):
        case = open_case(desk)
        decide(case, desk, "SEND_BACK", "ID photo unreadable")
        case.refresh_from_db()
        status_sent_back = case.status

        add_document(case, desk, "ID_DOCUMENT")

        case.refresh_from_db()
        assert (status_sent_back, case.status, case.first_reviewer) == ("SENT_BACK", "OPEN", None)
        assert OperationsLogEntry.objects.filter(action="kyc.case.reopen", target_id=str(case.pk)).count() == 1

    def test_the_reopened_case_is_reviewed_again(self, desk):
        case = open_case(desk)
        decide(case, desk, "SEND_BACK", "ID photo unreadable")
        add_document(case, desk, "ID_DOCUMENT")

        decide(case, desk)

        assert list(case.decisions.values_list("outcome", flat=True).order_by("pk")) == ["SEND_BACK", "APPROVE"]

    def test_no_decision_while_waiting_for_the_customer(self, desk):
        case = open_case(desk)
        decide(case, desk, "SEND_BACK", "more please")

        with pytest.raises(services.WrongStage):
            decide(case, desk)


class TestSignedDecisions:
    def test_a_decision_signs_who_when_and_the_dossier(self, desk):
        case = complete_individual(open_case(desk), desk)

        decision = decide(case, desk)

        assert (decision.decided_by, decision.decided_at) == (desk, NOW)
        assert decision.dossier["documents"][0]["sha256"] == Document.objects.get(case=case).sha256
        assert services.signature_holds(decision)

    def test_the_dossier_hash_changes_when_the_dossier_changes(self, desk):
        case = open_case(desk)
        first = decide(case, desk, "SEND_BACK", "need ID")
        add_document(case, desk, "ID_DOCUMENT")

        second = decide(case, desk)

        assert first.dossier_hash != second.dossier_hash

    def test_an_altered_archive_no_longer_verifies(self, desk):
        decision = decide(complete_individual(open_case(desk), desk), desk)

        decision.reason = "something else"

        assert not services.signature_holds(decision)

    def test_decisions_are_append_only_in_the_database(self, desk):
        decision = decide(complete_individual(open_case(desk), desk), desk)

        with pytest.raises(Exception, match="archived"), transaction.atomic():
            Decision.objects.filter(pk=decision.pk).update(reason="changed")


class TestDocuments:
    def test_stores_the_file_with_sniffed_type_size_hash_and_uploader(self, desk, settings):
        case = open_case(desk)

        document = add_document(case, desk, "ID_DOCUMENT", name="passport.pdf")

        assert (document.content_type, document.uploaded_by, len(document.sha256)) == ("application/pdf", desk, 64)
        assert document.size == document.file.size
        assert str(settings.MEDIA_ROOT) in document.file.path

    def test_refuses_an_executable_named_pdf_and_stores_nothing(self, desk, settings):
        case = open_case(desk)

        with pytest.raises(services.DocumentRefused, match="x-msdownload"):
            add_document(case, desk, "ID_DOCUMENT", name="passport.pdf", content=EXE)

        assert not Document.objects.exists()
        assert not (settings.MEDIA_ROOT / "kyc").exists()

    def test_a_refused_upload_leaves_no_file_behind(self, desk, settings):
        case = complete_individual(open_case(desk, level=2), desk, level=2)
        decide(case, desk)
        files_before = sorted(p.name for p in (settings.MEDIA_ROOT / "kyc").rglob("*"))

        with pytest.raises(services.WrongStage):
            add_document(case, desk, "ID_DOCUMENT", name="late.pdf", content=PDF + b"late")

        assert sorted(p.name for p in (settings.MEDIA_ROOT / "kyc").rglob("*")) == files_before

    def test_refuses_a_file_over_the_size_limit(self, desk):
        case = open_case(desk)
        big = upload("passport.pdf", b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024))

        with pytest.raises(services.DocumentRefused, match="the limit is 10,485,760"):
            services.add_document(
                case=case, document_type="ID_DOCUMENT", upload=big, named_person="", actor=actor(desk), now=NOW
            )

    def test_refuses_a_document_type_the_track_does_not_know(self, desk):
        with pytest.raises(services.DocumentRefused, match="not a document type"):
            add_document(open_case(desk), desk, "BOARD_RESOLUTION")
