"""Staff authentication: password plus TOTP, enforced on every staff page.

A staff session is complete only when the login view has checked both factors and marked the session
(`SECOND_FACTOR_SESSION_KEY`). The middleware logs out any session without that mark, so a password
alone — from any other login path — opens nothing.

A staff member without a confirmed authenticator proves the password once, then enrols: the pending
enrolment (user, fresh secret, deadline) lives in the session only, and nothing about the user changes
until the first code from the new authenticator confirms it.

Failed attempts are counted on the user row, under a row lock, and lock the login for a while at the
configured threshold. Unknown, inactive and non-staff usernames are counted the same way in the cache,
so neither the error nor the lock tells which usernames exist.
"""

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import pyotp
import segno
from django.contrib.auth import login, logout
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.db import transaction
from django.utils.safestring import mark_safe
from redis.exceptions import RedisError

from accounts.models import RecoveryCode, User
from backoffice import audit
from backoffice.errors import DomainError
from backoffice.parameters import param

logger = logging.getLogger(__name__)

SECOND_FACTOR_SESSION_KEY = "staff_second_factor_at"
PENDING_ENROLMENT_SESSION_KEY = "staff_pending_enrolment"
ENROLMENT_WINDOW = timedelta(minutes=10)
TOTP_ISSUER = "Exchange back office"
RECOVERY_CODE_COUNT = 10
# The password is checked here, by hand; guardian's backend adds object permissions, not a way to log in.
_LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"
_TOTP_CODE = re.compile(r"\d{6}")
_UNKNOWN_USERNAME_TTL = 24 * 60 * 60

# Pages a person without a complete session may reach: the login and enrolment flow and the health probe.
_OPEN_PREFIXES = ("/accounts/login", "/accounts/enrol", "/accounts/logout", "/health", "/static/", "/api/")


class RequireSecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.session.get(SECOND_FACTOR_SESSION_KEY):
            logout(request)
            if not request.path.startswith(_OPEN_PREFIXES):
                return redirect_to_login(request.get_full_path())
        return self.get_response(request)


class Outcome(StrEnum):
    LOGGED_IN = "LOGGED_IN"
    REFUSED = "REFUSED"
    LOCKED = "LOCKED"
    ENROL = "ENROL"


@dataclass(frozen=True)
class LoginResult:
    outcome: Outcome
    user: User | None = None
    locked_until: datetime | None = None


class WrongCode(DomainError):
    """The code does not match the authenticator."""

    code = "wrong_code"


class EnrolmentNotPending(DomainError):
    """There is no enrolment to confirm for this user; log in again."""

    code = "enrolment_not_pending"


@transaction.atomic
def check_staff_login(*, username: str, password: str, code: str, ip: str | None, now: datetime) -> LoginResult:
    """Check a staff login: password, then a TOTP or recovery code. Counts failures and locks the login.

    The acting person is only known once the password matches, so this takes the request IP instead of
    an actor. The caller logs the user in on LOGGED_IN and starts enrolment on ENROL.
    """
    user = User.objects.select_for_update(no_key=True).filter(username=username, is_active=True, is_staff=True).first()
    if user is None:
        User().set_password(password)  # the same hashing cost as a real user, so timing tells nothing
        return _refuse_unknown(username, now=now)
    if user.login_locked_until and user.login_locked_until > now:
        logger.warning("staff login refused while locked: user %s from %s", user.pk, ip)
        return LoginResult(Outcome.LOCKED, locked_until=user.login_locked_until)
    if not user.check_password(password):
        return _fail(user, reason="wrong password", ip=ip, now=now)
    if not user.has_second_factor:
        return LoginResult(Outcome.ENROL, user=user)
    method = _second_factor(user, code, ip=ip, now=now)
    if method is None:
        return _fail(user, reason="wrong code", ip=ip, now=now)
    _record_login(user, method=method, ip=ip, now=now)
    return LoginResult(Outcome.LOGGED_IN, user=user)


def confirm_totp_enrolment(
    *, user_id: int, secret: str, code: str, ip: str | None, now: datetime
) -> tuple[User, list[str]]:
    """Confirm a new authenticator with its first code; returns the user and the recovery codes (shown once)."""
    step = _matching_step(secret, code, now=now)
    if step is None:
        raise WrongCode()
    # Hashing the codes takes seconds by design; done first, so the user row is not locked meanwhile.
    codes = [f"{token[:5]}-{token[5:]}" for token in (secrets.token_hex(5) for _ in range(RECOVERY_CODE_COUNT))]
    hashes = [make_password(normalise_recovery_code(code)) for code in codes]
    user = _confirm_enrolment(user_id=user_id, secret=secret, step=step, code_hashes=hashes, ip=ip, now=now)
    return user, codes


@transaction.atomic
def _confirm_enrolment(
    *, user_id: int, secret: str, step: int, code_hashes: list[str], ip: str | None, now: datetime
) -> User:
    user = User.objects.select_for_update(no_key=True).filter(pk=user_id, is_active=True, is_staff=True).first()
    if user is None or user.has_second_factor:
        raise EnrolmentNotPending()
    user.totp_secret, user.totp_confirmed_at, user.totp_last_step = secret, now, step
    user.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
    user.recovery_codes.all().delete()
    RecoveryCode.objects.bulk_create(RecoveryCode(user=user, code_hash=h, created_at=now) for h in code_hashes)
    audit.record(
        actor=audit.Actor.staff(user, ip=ip),
        action="staff.totp_enrolled",
        target=user,
        now=now,
        after={"totp_confirmed_at": now, "recovery_codes": len(code_hashes)},
    )
    _record_login(user, method="enrolment", ip=ip, now=now)
    return user


def complete_login(request, user: User, *, now: datetime) -> None:
    """Log a user in whose password and second factor have both been checked, and mark the session so."""
    login(request, user, backend=_LOGIN_BACKEND)
    request.session[SECOND_FACTOR_SESSION_KEY] = now.isoformat()


@dataclass(frozen=True)
class PendingEnrolment:
    user_id: int
    username: str
    secret: str

    @property
    def provisioning_uri(self) -> str:
        return pyotp.TOTP(self.secret).provisioning_uri(name=self.username, issuer_name=TOTP_ISSUER)

    @property
    def secret_for_display(self) -> str:
        """The secret in groups of four, as people type it into an authenticator app by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))

    @property
    def qr_svg(self) -> str:
        """The provisioning URI as an inline SVG QR code, ready to be put into a page."""
        svg = segno.make(self.provisioning_uri, error="m").svg_inline(scale=5, border=2, title="QR code")
        # segno draws the markup from the QR matrix alone; no text from the user or the request is in it.
        return mark_safe(svg)  # noqa: S308


def begin_enrolment(session, user: User, *, now: datetime) -> PendingEnrolment:
    """Remember, for a short while, that this session has proved `user`'s password and is enrolling."""
    session.cycle_key()
    pending = PendingEnrolment(user_id=user.pk, username=user.get_username(), secret=pyotp.random_base32())
    session[PENDING_ENROLMENT_SESSION_KEY] = {
        "user_id": pending.user_id,
        "username": pending.username,
        "secret": pending.secret,
        "expires_at": (now + ENROLMENT_WINDOW).isoformat(),
    }
    return pending


def pending_enrolment(session, *, now: datetime) -> PendingEnrolment | None:
    """The session's enrolment in progress, unless there is none or it has expired."""
    data = session.get(PENDING_ENROLMENT_SESSION_KEY)
    if not data or datetime.fromisoformat(data["expires_at"]) <= now:
        return None
    return PendingEnrolment(user_id=data["user_id"], username=data["username"], secret=data["secret"])


def end_enrolment(session) -> None:
    session.pop(PENDING_ENROLMENT_SESSION_KEY, None)


def normalise_recovery_code(code: str) -> str:
    """Recovery codes are shown as `xxxxx-xxxxx`; people type them with or without the dash and spaces."""
    return re.sub(r"[\s-]", "", code).lower()


def _second_factor(user: User, code: str, *, ip: str | None, now: datetime) -> str | None:
    """How the second factor was proved ("totp" or "recovery_code"), or None if it was not."""
    if _TOTP_CODE.fullmatch(code):
        step = _matching_step(user.totp_secret, code, now=now)
        # A step at or before the last accepted one is a replay of a code someone may have watched being typed.
        if step is None or step <= user.totp_last_step:
            return None
        user.totp_last_step = step
        return "totp"
    if code and _use_recovery_code(user, code, ip=ip, now=now):
        return "recovery_code"
    return None


def _matching_step(secret: str, code: str, *, now: datetime) -> int | None:
    if not _TOTP_CODE.fullmatch(code):
        return None
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(code, for_time=now, valid_window=1)
    except pyotp.exceptions.OTPVerificationError:
        return None


def _use_recovery_code(user: User, code: str, *, ip: str | None, now: datetime) -> bool:
    code = normalise_recovery_code(code)
    unused = list(user.recovery_codes.filter(used_at__isnull=True).order_by("pk"))
    match = next((row for row in unused if check_password(code, row.code_hash)), None)
    # The user row is locked, but compare-and-set keeps a code single-use even without that lock.
    if match is None or not RecoveryCode.objects.filter(pk=match.pk, used_at__isnull=True).update(used_at=now):
        return False
    audit.record(
        actor=audit.Actor.staff(user, ip=ip),
        action="staff.recovery_code_used",
        target=match,
        now=now,
        after={"used_at": now, "unused_left": len(unused) - 1},
    )
    return True


def _record_login(user: User, *, method: str, ip: str | None, now: datetime) -> None:
    before = audit.snapshot(user, ("failed_login_count", "login_locked_until"))
    user.failed_login_count, user.login_locked_until = 0, None
    user.save(update_fields=["failed_login_count", "login_locked_until", "totp_last_step"])
    audit.record(
        actor=audit.Actor.staff(user, ip=ip),
        action="staff.login",
        target=user,
        now=now,
        before=before,
        after={"method": method, "failed_login_count": 0},
    )


def _fail(user: User, *, reason: str, ip: str | None, now: datetime) -> LoginResult:
    actor = audit.Actor.staff(user, ip=ip)
    before = {"failed_login_count": user.failed_login_count}
    user.failed_login_count, user.login_locked_until = _after_failure(user.failed_login_count, now=now)
    user.save(update_fields=["failed_login_count", "login_locked_until"])
    audit.record(
        actor=actor,
        action="staff.login_failed",
        target=user,
        now=now,
        before=before,
        after={"failed_login_count": before["failed_login_count"] + 1},
        reason=reason,
    )
    if user.login_locked_until is None:
        return LoginResult(Outcome.REFUSED)
    audit.record(
        actor=actor,
        action="staff.login_locked",
        target=user,
        now=now,
        after={"locked_until": user.login_locked_until},
        reason="too many failed logins in a row",
    )
    return LoginResult(Outcome.LOCKED, locked_until=user.login_locked_until)


def _after_failure(failures: int, *, now: datetime) -> tuple[int, datetime | None]:
    """The failure count and lock deadline after one more failure."""
    if failures + 1 < param("staff.login_max_failures", at=now):
        return failures + 1, None
    # The lock is the penalty for this run of failures; once it expires the next run starts from zero.
    return 0, now + timedelta(minutes=param("staff.login_lockout_minutes", at=now))


def _refuse_unknown(username: str, *, now: datetime) -> LoginResult:
    """Count a failure against a username that cannot log in, exactly as for a real one, but in the cache.

    Not in the operations log: anyone can send any name, and the log is kept for years.
    """
    logger.info("staff login refused for an unknown, inactive or non-staff username")
    key = "staff-login:unknown:" + hashlib.sha256(username.casefold().encode()).hexdigest()
    try:
        failures, locked_until = cache.get(key) or (0, None)
        if locked_until is not None and locked_until > now:
            return LoginResult(Outcome.LOCKED, locked_until=locked_until)
        failures, locked_until = _after_failure(failures, now=now)
        cache.set(key, (failures, locked_until), timeout=_UNKNOWN_USERNAME_TTL)
    except RedisError:  # without Redis the answer is the generic refusal, which is enough
        logger.warning("staff login: cache unavailable while counting an unknown username")
        return LoginResult(Outcome.REFUSED)
    return LoginResult(Outcome.LOCKED if locked_until else Outcome.REFUSED, locked_until=locked_until)


@transaction.atomic
def unlock_staff_login(*, user: User, actor, now: datetime) -> User:
    """Lift a staff login lockout early (an administrator's action, logged)."""
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    before = {"failed_login_count": user.failed_login_count, "login_locked_until": user.login_locked_until}
    user.failed_login_count, user.login_locked_until = 0, None
    user.save(update_fields=["failed_login_count", "login_locked_until"])
    audit.record(
        actor=actor,
        action="staff.login_unlocked",
        target=user,
        now=now,
        before=before,
        after={"failed_login_count": 0, "login_locked_until": None},
    )
    return user


@transaction.atomic
def reset_second_factor(*, user: User, actor, now: datetime, reason: str) -> User:
    """Forget a staff member's authenticator and recovery codes; they enrol again at their next login."""
    user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
    user.totp_secret, user.totp_confirmed_at, user.totp_last_step = "", None, 0
    user.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
    RecoveryCode.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
    audit.record(
        actor=actor,
        action="staff.second_factor_reset",
        target=user,
        now=now,
        reason=reason,
        before={"enrolled": True},
        after={"enrolled": False},
    )
    return user
