import re

import pyotp
import pytest
from playwright.sync_api import expect

from accounts.models import User
from accounts.views import REFUSED
from tests import factories
from tests.browser.conftest import wrong_code

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
PASSWORD = "correct horse battery staple"


def fill_login(page, username: str, code: str) -> None:
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/admin/$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Log in").click()


def test_a_staff_member_logs_in_with_password_and_authenticator_code_and_a_wrong_code_is_refused(new_page):
    staff = factories.make_staff(roles=("risk officer",), username="rita", password=PASSWORD)
    page = new_page()

    fill_login(page, "rita", wrong_code(staff.totp_secret))

    expect(page.locator(".errornote")).to_have_text(REFUSED)
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    assert User.objects.get(pk=staff.pk).failed_login_count == 1

    fill_login(page, "rita", pyotp.TOTP(staff.totp_secret).now())

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text("rita")
    expect(page.get_by_role("link", name="Withdrawals", exact=True)).to_be_visible()
    assert User.objects.get(pk=staff.pk).failed_login_count == 0


def test_a_new_staff_member_enrols_from_the_qr_code_page_and_gets_recovery_codes(new_page):
    factories.make_staff(roles=("auditor",), username="nina", password=PASSWORD, enrolled=False)
    page = new_page()

    fill_login(page, "nina", "")

    expect(page).to_have_url(re.compile(r"/accounts/enrol/"))
    qr = page.locator(".enrol-qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None
    assert box["width"] >= 100
    assert abs(box["width"] - box["height"]) < 1  # a square image
    assert qr.locator("path").count() >= 1  # the modules are drawn, not just an empty frame
    expect(qr.locator("title")).to_have_text("QR code")
    secret = page.locator(".enrol-secret").inner_text().replace(" ", "")

    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and log in").click()

    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="I have stored them: continue").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text("nina")
    nina = User.objects.get(username="nina")
    assert nina.has_second_factor
    assert nina.totp_secret == secret
