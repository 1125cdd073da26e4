"""Staff authentication: password plus TOTP, enforced on every staff page.

A staff session is complete only when the login view has checked both factors and marked the session
(`SECOND_FACTOR_SESSION_KEY`). The middleware logs out any session without that mark, so a password
alone — from any other login path — opens nothing.
"""

from django.contrib.auth import logout
from django.shortcuts import redirect

SECOND_FACTOR_SESSION_KEY = "staff_second_factor_at"

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
                return redirect(f"/accounts/login/?next={request.path}")
        return self.get_response(request)
