from datetime import date

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Customer
from backoffice.audit import Actor
from kyc import selectors, services
from kyc.models import Decision, KycCase
from tests import factories
from tests.kyc.builders import add_document

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def case_for_second_review():
    """A level-2 case the trading desk has approved at the first review: compliance decides the second."""
    selectors.forget_index()
    desk = factories.make_staff(roles=("trading desk",), username="dora")
    customer = factories.make_customer(name="Anna Example", date_of_birth=date(1990, 1, 1))
    now = timezone.now()
    case = services.open_case(customer=customer, requested_level=2, actor=Actor.staff(desk), now=now)
    add_document(case, desk, "ID_DOCUMENT", named_person="Anna Example", name="passport.pdf")
    for check in ("AUTHENTICATOR", "ANTI_PHISHING_CODE"):
        services.record_check(case=case, check=check, note="seen in the app", actor=Actor.staff(desk), now=now)
    services.decide_case(case=case, outcome="APPROVE", reason="ID matches", actor=Actor.staff(desk), now=now)
    case.refresh_from_db()
    assert case.status == KycCase.Status.SECOND_REVIEW
    return case


def test_a_compliance_officer_opens_the_queue_and_approves_the_second_review_with_a_reason(
    new_page, case_for_second_review
):
    case = case_for_second_review
    compliance = factories.make_staff(roles=("compliance officer",), username="carl")
    page = new_page(compliance)

    page.goto("/admin/kyc/kyccase/?queue=open")
    expect(page.locator(".module").filter(has_text="Backlog:").first).to_contain_text("1 open case(s)")
    row = page.locator("#result_list tbody tr").filter(has_text="Anna Example")
    expect(row).to_contain_text("Awaiting second review")
    row.get_by_role("link", name=str(case.pk), exact=True).click()

    expect(page.get_by_role("heading", name="Decide — Awaiting second review")).to_be_visible()
    expect(page.locator(".decide")).to_contain_text("First review: Approve by dora — ID matches")
    reason = page.get_by_placeholder("reason (required)")

    page.get_by_role("button", name="Approve", exact=True).click()  # no reason: the browser keeps the form
    assert reason.evaluate("el => el.validity.valueMissing")
    assert Decision.objects.filter(case=case).count() == 1

    reason.fill("dossier complete, no screening hits")
    page.get_by_role("button", name="Approve", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("Second review: approve, signed.")
    expect(page.locator(".decide")).to_contain_text("Second review: Approve by carl — dossier complete")
    case.refresh_from_db()
    assert (case.status, case.second_reviewer_id) == (KycCase.Status.APPROVED, compliance.pk)
    assert Customer.objects.get(pk=case.customer_id).kyc_level == 2
