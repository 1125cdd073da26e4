"""The API's own, shorter middleware stack."""

from functools import lru_cache

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.urls import Resolver404, get_urlconf, resolve
from django.utils.module_loading import import_string

API_PREFIX = "/api/v1/"


class ApiMiddleware:
    """First in MIDDLEWARE: a request to an API endpoint goes through settings.API_MIDDLEWARE only.

    The API authenticates every request by its bearer token (backoffice.api) and never reads a session,
    a CSRF token or a message, so the session, CSRF, staff-login, second-factor, message and static-file
    middleware, which serve the staff pages, are skipped for it; the transport-security, common and
    framing middleware still run, so API responses carry the same security headers. A path under
    /api/v1/ that names no endpoint takes the full stack, like any other path.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        handler = convert_exception_to_response(self._call_view)
        for path in reversed(settings.API_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self.api_response = handler

    def __call__(self, request):
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            request.resolver_match = _resolve(get_urlconf(), request.path_info)
        except Resolver404:
            return self.get_response(request)
        return self.api_response(request)

    @staticmethod
    def _call_view(request):
        match = request.resolver_match
        response = match.func(request, *match.args, **match.kwargs)
        if response is None:
            raise ValueError(f"The view {match.func.__module__}.{match.func.__name__} didn't return an HttpResponse.")
        if callable(getattr(response, "render", None)):
            response = response.render()
        return response


@lru_cache(maxsize=4096)
def _resolve(urlconf: str | None, path: str):
    """A path's view, remembered: the engine calls the same few paths all day, and the URL conf never
    changes in a running process."""
    return resolve(path, urlconf)
