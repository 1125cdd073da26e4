"""The staff login, authenticator enrolment and logout pages; the checks themselves are in accounts.staff_auth."""

from datetime import UTC

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts import staff_auth
from accounts.forms import EnrolForm, LoginForm
from accounts.staff_auth import LoginResult, Outcome
from backoffice import audit

REFUSED = "The username, password or code is not right. Codes change every 30 seconds and work only once."


@sensitive_post_parameters("password", "code")
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        return redirect(next_url)
    form = LoginForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        now = timezone.now()
        result = staff_auth.check_staff_login(**form.cleaned_data, ip=audit.client_ip(request), now=now)
        if result.outcome == Outcome.LOGGED_IN:
            staff_auth.complete_login(request, result.user, now=now)
            return redirect(next_url)
        if result.outcome == Outcome.ENROL:
            staff_auth.begin_enrolment(request.session, result.user, now=now)
            return redirect(f"{reverse('staff-enrol')}?{urlencode({'next': next_url})}")
        form.add_error(None, _refusal(result))
    return _render(request, "registration/login.html", {"form": form, "next": next_url, "title": "Log in"})


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def enrol_view(request):
    now = timezone.now()
    pending = staff_auth.pending_enrolment(request.session, now=now)
    if pending is None:
        messages.error(request, "There is no enrolment in progress, or it has expired. Log in again to enrol.")
        return redirect("staff-login")
    next_url = _safe_next(request)
    form = EnrolForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            user, codes = staff_auth.confirm_totp_enrolment(
                user_id=pending.user_id,
                secret=pending.secret,
                code=form.cleaned_data["code"],
                ip=audit.client_ip(request),
                now=now,
            )
        except staff_auth.WrongCode as refusal:
            form.add_error("code", str(refusal))
        except staff_auth.EnrolmentNotPending as refusal:
            staff_auth.end_enrolment(request.session)
            messages.error(request, str(refusal))
            return redirect("staff-login")
        else:
            staff_auth.end_enrolment(request.session)
            staff_auth.complete_login(request, user, now=now)
            # Rendered rather than redirected to, so the codes are never stored where they could be shown again.
            context = {"codes": codes, "next": next_url, "title": "Your recovery codes"}
            return _render(request, "accounts/recovery_codes.html", context)
    context = {"form": form, "pending": pending, "next": next_url, "title": "Set up your authenticator"}
    return _render(request, "accounts/enrol.html", context)


@require_POST
def logout_view(request):
    logout(request)
    messages.info(request, "You have logged out.")
    return redirect("staff-login")


def _safe_next(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return settings.LOGIN_REDIRECT_URL


def _refusal(result: LoginResult) -> str:
    if result.outcome == Outcome.LOCKED:
        until = result.locked_until.astimezone(UTC)
        return (
            f"Too many failed attempts: this login is locked until {until:%H:%M} UTC. "
            "Try again then, or ask an administrator."
        )
    return REFUSED


def _render(request, template: str, context: dict):
    # The admin's context gives these pages the admin's header and styles.
    return render(request, template, admin.site.each_context(request) | context)
