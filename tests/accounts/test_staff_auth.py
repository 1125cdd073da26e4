import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pyotp
import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts import staff_auth
from accounts.management.commands.demo_totp_code import Command as DemoTotpCode
from accounts.models import RecoveryCode, User
from accounts.staff_auth import PENDING_ENROLMENT_SESSION_KEY, SECOND_FACTOR_SESSION_KEY, Outcome
from accounts.views import REFUSED
from backoffice.models import OperationsLogEntry
from backoffice.parameters import param
from tests.factories import NOW, make_staff

PASSWORD = "correct horse battery staple"
LOGIN = "/accounts/login/"
ENROL = "/accounts/enrol/"
LOGOUT = "/accounts/logout/"


def current_code(user) -> str:
    return pyotp.TOTP(user.totp_secret).now()


def wrong_code(secret: str) -> str:
    """A code the authenticator does not show now, nor just before or after."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time(), counter_offset=offset) for offset in range(-2, 3)}
    return next(code for code in ("000000", "123456", "654321", "999999") if code not in near)


def post_login(client, user, *, code=None, password=PASSWORD, next_url=None, **request):
    data = {"username": user.username, "password": password, "code": current_code(user) if code is None else code}
    if next_url is not None:
        data["next"] = next_url
    return client.post(LOGIN, data, **request)


def error_of(response) -> list[str]:
    return response.context["form"].non_field_errors()


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def attempt(user, *, now, code=None, password=PASSWORD):
    """The login service, as the view calls it."""
    code = pyotp.TOTP(user.totp_secret).at(now) if code is None else code
    return staff_auth.check_staff_login(
        username=user.username, password=password, code=code, ip="198.51.100.4", now=now
    )


def enrol_with_recovery_codes(user) -> list[str]:
    secret = pyotp.random_base32()
    _, codes = staff_auth.confirm_totp_enrolment(
        user_id=user.pk, secret=secret, code=pyotp.TOTP(secret).at(NOW), ip=None, now=NOW
    )
    return codes


class TestLoginPage:
    def test_password_and_code_log_in_and_open_the_admin(self, client, db):
        user = make_staff()

        response = post_login(client, user)

        assert response.status_code == 302
        assert response["Location"] == "/admin/"
        assert client.get("/admin/").status_code == 200

    def test_the_session_is_marked_with_the_time_the_second_factor_was_checked(self, client, db):
        user = make_staff()
        before = datetime.now(UTC)

        post_login(client, user)

        marked_at = datetime.fromisoformat(client.session[SECOND_FACTOR_SESSION_KEY])
        assert before <= marked_at <= datetime.now(UTC)

    def test_the_page_renders_one_form_with_username_password_and_code(self, client, db):
        response = client.get(LOGIN)

        assert response.status_code == 200
        for field in ('name="username"', 'name="password"', 'name="code"', 'name="csrfmiddlewaretoken"'):
            assert field in response.text

    def test_password_alone_never_opens_the_admin(self, client, db):
        user = make_staff()

        response = post_login(client, user, code="")

        assert response.status_code == 200
        assert error_of(response) == [REFUSED]
        assert not is_logged_in(client)
        assert client.get("/admin/").status_code == 302

    def test_a_session_without_the_second_factor_is_logged_out_and_sent_to_the_login(self, client, db):
        client.force_login(make_staff())

        response = client.get("/admin/")

        assert response.status_code == 302
        assert response["Location"] == "/accounts/login/?next=/admin/"
        assert not is_logged_in(client)

    def test_a_wrong_code_is_refused(self, client, db):
        user = make_staff()

        response = post_login(client, user, code=wrong_code(user.totp_secret))

        assert error_of(response) == [REFUSED]
        assert not is_logged_in(client)

    def test_a_wrong_password_with_the_right_code_is_refused(self, client, db):
        user = make_staff()

        response = post_login(client, user, password="not the password")

        assert error_of(response) == [REFUSED]
        assert not is_logged_in(client)

    def test_a_code_is_accepted_only_once(self, client, db):
        user = make_staff()
        code = current_code(user)
        post_login(client, user, code=code)
        client.post(LOGOUT)

        response = post_login(client, user, code=code)

        assert error_of(response) == [REFUSED]
        assert not is_logged_in(client)

    def test_an_unknown_username_gets_the_same_error_as_a_wrong_password(self, client, db):
        user = make_staff()
        wrong_password = post_login(client, user, password="not the password")

        unknown = client.post(LOGIN, {"username": f"nobody-{uuid.uuid4()}", "password": PASSWORD, "code": "123456"})

        assert unknown.status_code == wrong_password.status_code == 200
        assert error_of(unknown) == error_of(wrong_password) == [REFUSED]

    @pytest.mark.parametrize("flag", ["is_staff", "is_active"])
    def test_only_active_staff_can_log_in(self, client, db, flag):
        user = make_staff()
        setattr(user, flag, False)
        user.save(update_fields=[flag])

        response = post_login(client, user)

        assert error_of(response) == [REFUSED]
        assert not is_logged_in(client)

    def test_a_safe_next_is_followed(self, client, db):
        user = make_staff()

        response = post_login(client, user, next_url="/admin/backoffice/")

        assert response["Location"] == "/admin/backoffice/"

    @pytest.mark.parametrize("unsafe", ["https://evil.example/admin/", "//evil.example/", "javascript:alert(1)"])
    def test_an_unsafe_next_is_ignored(self, client, db, unsafe):
        user = make_staff()

        response = post_login(client, user, next_url=unsafe)

        assert response["Location"] == "/admin/"

    def test_the_login_form_needs_the_csrf_token(self, db):
        user = make_staff()
        client = Client(enforce_csrf_checks=True)

        response = post_login(client, user)

        assert response.status_code == 403
        assert not is_logged_in(client)

    def test_a_logged_in_user_is_sent_on_to_the_admin(self, client, db):
        user = make_staff()
        post_login(client, user)

        response = client.get(LOGIN)

        assert response.status_code == 302
        assert response["Location"] == "/admin/"


class TestRecoveryCodes:
    def test_a_recovery_code_logs_in_instead_of_the_totp_code(self, client, db):
        user = make_staff(enrolled=False)
        codes = enrol_with_recovery_codes(user)

        response = post_login(client, user, code=codes[0])

        assert response.status_code == 302
        assert client.get("/admin/").status_code == 200

    def test_a_recovery_code_works_only_once(self, client, db):
        user = make_staff(enrolled=False)
        codes = enrol_with_recovery_codes(user)
        post_login(client, user, code=codes[0])
        client.post(LOGOUT)

        response = post_login(client, user, code=codes[0])

        assert error_of(response) == [REFUSED]
        assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1

    def test_a_recovery_code_may_be_typed_without_the_dash_and_in_capitals(self, client, db):
        user = make_staff(enrolled=False)
        codes = enrol_with_recovery_codes(user)

        response = post_login(client, user, code=codes[3].replace("-", "").upper())

        assert response.status_code == 302

    def test_recovery_codes_are_stored_hashed(self, db):
        user = make_staff(enrolled=False)

        codes = enrol_with_recovery_codes(user)

        stored = set(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
        assert len(stored) == 10
        assert not any(code in hashed or code.replace("-", "") in hashed for code in codes for hashed in stored)


class TestLockout:
    def test_one_failure_below_the_threshold_the_right_credentials_still_log_in(self, db):
        user = make_staff()
        for _ in range(param("staff.login_max_failures") - 1):
            attempt(user, now=NOW, password="wrong")

        result = attempt(user, now=NOW)

        assert result.outcome == Outcome.LOGGED_IN

    def test_at_the_threshold_even_the_right_credentials_are_refused(self, db):
        user = make_staff()
        for _ in range(param("staff.login_max_failures")):
            attempt(user, now=NOW, password="wrong")

        result = attempt(user, now=NOW)

        assert result.outcome == Outcome.LOCKED
        user.refresh_from_db()
        assert user.login_locked_until == NOW + timedelta(minutes=param("staff.login_lockout_minutes"))

    def test_wrong_codes_count_as_failures(self, db):
        user = make_staff()
        totp = pyotp.TOTP(user.totp_secret)
        wrong = next(
            c
            for c in ("000000", "111111", "222222", "333333")
            if c not in {totp.at(NOW, counter_offset=offset) for offset in (-1, 0, 1)}
        )
        for _ in range(param("staff.login_max_failures")):
            attempt(user, now=NOW, code=wrong)

        result = attempt(user, now=NOW)

        assert result.outcome == Outcome.LOCKED

    def test_the_lock_holds_until_the_configured_minutes_have_passed(self, db):
        user = make_staff()
        for _ in range(param("staff.login_max_failures")):
            attempt(user, now=NOW, password="wrong")
        unlock_at = NOW + timedelta(minutes=param("staff.login_lockout_minutes"))

        just_before = attempt(user, now=unlock_at - timedelta(seconds=1))
        at_expiry = attempt(user, now=unlock_at)

        assert just_before.outcome == Outcome.LOCKED
        assert at_expiry.outcome == Outcome.LOGGED_IN

    def test_a_successful_login_resets_the_failure_count(self, db):
        user = make_staff()
        attempt(user, now=NOW, password="wrong")
        attempt(user, now=NOW, password="wrong")

        attempt(user, now=NOW)

        user.refresh_from_db()
        assert user.failed_login_count == 0

    def test_the_locked_page_says_so_even_with_the_right_credentials(self, client, db):
        user = make_staff()
        for _ in range(param("staff.login_max_failures")):
            post_login(client, user, password="wrong")

        response = post_login(client, user)

        assert not is_logged_in(client)
        assert "locked until" in error_of(response)[0]

    def test_unknown_usernames_lock_after_as_many_failures_as_real_ones(self, db):
        username = f"nobody-{uuid.uuid4()}"
        outcomes = [
            staff_auth.check_staff_login(username=username, password="x", code="123456", ip=None, now=NOW).outcome
            for _ in range(param("staff.login_max_failures"))
        ]

        assert outcomes[:-1] == [Outcome.REFUSED] * (len(outcomes) - 1)
        assert outcomes[-1] == Outcome.LOCKED


class TestEnrolment:
    def test_a_user_without_an_authenticator_is_sent_to_enrolment_and_not_logged_in(self, client, db):
        user = make_staff(enrolled=False)

        response = post_login(client, user, code="")

        assert response.status_code == 302
        assert response["Location"] == "/accounts/enrol/?next=%2Fadmin%2F"
        assert not is_logged_in(client)
        assert client.get("/admin/").status_code == 302

    def test_the_enrolment_page_shows_a_qr_code_and_the_secret(self, client, db):
        user = make_staff(enrolled=False)
        post_login(client, user, code="")

        response = client.get(ENROL)

        secret = client.session[PENDING_ENROLMENT_SESSION_KEY]["secret"]
        assert response.status_code == 200
        assert '<div class="enrol-qr"><svg' in response.text
        assert " ".join(re.findall(".{1,4}", secret)) in response.text

    def test_confirming_logs_in_and_shows_ten_recovery_codes(self, client, db):
        user = make_staff(enrolled=False)
        post_login(client, user, code="")
        secret = client.session[PENDING_ENROLMENT_SESSION_KEY]["secret"]

        response = client.post(ENROL, {"code": pyotp.TOTP(secret).now()})

        assert response.status_code == 200
        codes = response.context["codes"]
        assert len(codes) == 10
        assert all(code in response.text for code in codes)
        user.refresh_from_db()
        assert user.has_second_factor
        assert user.totp_secret == secret
        assert client.get("/admin/").status_code == 200

    def test_the_recovery_codes_are_not_shown_again(self, client, db):
        user = make_staff(enrolled=False)
        post_login(client, user, code="")
        secret = client.session[PENDING_ENROLMENT_SESSION_KEY]["secret"]
        codes = client.post(ENROL, {"code": pyotp.TOTP(secret).now()}).context["codes"]

        response = client.get(ENROL, follow=True)

        assert not any(code in response.text for code in codes)

    def test_a_wrong_code_confirms_nothing(self, client, db):
        user = make_staff(enrolled=False)
        post_login(client, user, code="")
        secret = client.session[PENDING_ENROLMENT_SESSION_KEY]["secret"]

        response = client.post(ENROL, {"code": wrong_code(secret)})

        assert response.status_code == 200
        assert response.context["form"].errors["code"]
        user.refresh_from_db()
        assert not user.has_second_factor
        assert not is_logged_in(client)

    def test_an_enrolment_cannot_replace_an_authenticator_already_confirmed(self, db):
        user = make_staff()
        secret = pyotp.random_base32()

        with pytest.raises(staff_auth.EnrolmentNotPending):
            staff_auth.confirm_totp_enrolment(
                user_id=user.pk, secret=secret, code=pyotp.TOTP(secret).at(NOW), ip=None, now=NOW
            )

        assert User.objects.get(pk=user.pk).totp_secret == user.totp_secret

    def test_an_expired_enrolment_sends_back_to_the_login(self, client, db):
        user = make_staff(enrolled=False)
        post_login(client, user, code="")

        with time_machine.travel(datetime.now(UTC) + staff_auth.ENROLMENT_WINDOW + timedelta(seconds=1)):
            response = client.get(ENROL)

        assert response.status_code == 302
        assert response["Location"] == LOGIN

    def test_the_enrolment_page_without_a_password_sends_to_the_login(self, client, db):
        response = client.get(ENROL)

        assert response.status_code == 302
        assert response["Location"] == LOGIN


class TestOperationsLog:
    def test_a_login_is_logged_with_the_ip(self, client, db):
        user = make_staff()

        post_login(client, user, REMOTE_ADDR="203.0.113.7")

        entry = OperationsLogEntry.objects.get(action="staff.login")
        assert (entry.actor_user_id, entry.ip, entry.after["method"]) == (user.pk, "203.0.113.7", "totp")

    def test_failures_and_the_lock_are_logged(self, client, db):
        user = make_staff()
        max_failures = param("staff.login_max_failures")

        for _ in range(max_failures):
            post_login(client, user, password="wrong")

        entries = OperationsLogEntry.objects.filter(actor_user_id=user.pk)
        assert entries.filter(action="staff.login_failed").count() == max_failures
        assert entries.filter(action="staff.login_locked").count() == 1

    def test_enrolment_is_logged(self, client, db):
        user = make_staff(enrolled=False)
        post_login(client, user, code="")
        secret = client.session[PENDING_ENROLMENT_SESSION_KEY]["secret"]

        client.post(ENROL, {"code": pyotp.TOTP(secret).now()}, REMOTE_ADDR="203.0.113.8")

        entry = OperationsLogEntry.objects.get(action="staff.totp_enrolled")
        assert (entry.actor_user_id, entry.ip, entry.after["recovery_codes"]) == (user.pk, "203.0.113.8", 10)

    def test_the_use_of_a_recovery_code_is_logged(self, client, db):
        user = make_staff(enrolled=False)
        codes = enrol_with_recovery_codes(user)

        post_login(client, user, code=codes[0])

        entry = OperationsLogEntry.objects.get(action="staff.recovery_code_used")
        assert (entry.actor_user_id, entry.after["unused_left"]) == (user.pk, 9)


class TestLogout:
    def test_logging_out_ends_the_session(self, client, db):
        post_login(client, make_staff())

        response = client.post(LOGOUT)

        assert response.status_code == 302
        assert not is_logged_in(client)
        assert client.get("/admin/").status_code == 302

    def test_logging_out_needs_a_post(self, client, db):
        post_login(client, make_staff())

        response = client.get(LOGOUT)

        assert response.status_code == 405
        assert is_logged_in(client)


class TestIdleExpiry:
    def test_a_session_idle_for_longer_than_the_session_age_no_longer_opens_the_admin(self, client, db):
        post_login(client, make_staff())

        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=settings.SESSION_COOKIE_AGE + 1)):
            response = client.get("/admin/", follow=True)

        assert response.redirect_chain[-1][0].startswith(LOGIN)
        assert "form" in response.context
        assert not is_logged_in(client)

    def test_a_session_used_within_the_session_age_still_opens_the_admin(self, client, db):
        post_login(client, make_staff())

        with time_machine.travel(datetime.now(UTC) + timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)):
            response = client.get("/admin/")

        assert response.status_code == 200


class TestDemoTotpCode:
    def test_it_refuses_unless_demo_mode_is_on(self, settings):
        settings.DEMO_MODE = False

        with pytest.raises(CommandError, match="DEMO_MODE"):
            call_command("demo_totp_code", "anyone")

    def test_the_refusal_exits_non_zero_with_a_one_line_reason(self, settings, capsys):
        settings.DEMO_MODE = False

        with pytest.raises(SystemExit) as exit_info:
            DemoTotpCode().run_from_argv(["manage.py", "demo_totp_code", "anyone"])

        assert exit_info.value.code != 0
        assert len(capsys.readouterr().err.strip().splitlines()) == 1

    def test_it_prints_the_current_code_and_the_otpauth_uri_in_demo_mode(self, settings, db):
        settings.DEMO_MODE = True
        user = make_staff()
        out = StringIO()

        with time_machine.travel(NOW, tick=False):
            call_command("demo_totp_code", user.username, stdout=out)

        code, uri = out.getvalue().splitlines()
        assert re.fullmatch(r"\d{6}", code)
        assert code == pyotp.TOTP(user.totp_secret).at(NOW)
        assert uri.startswith("otpauth://totp/")
        assert f"secret={user.totp_secret}" in uri
