"""The lean dispatch of the API's hot endpoints (a module of its own: DRF's settings import backoffice.api)."""

from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

_PLAIN_ACCEPT = frozenset(("*/*", "application/json"))


class LeanApiView(APIView):
    """An APIView that answers its common case without DRF's per-request machinery.

    The matching engine calls a few endpoints for every login and every order. A request with no query
    string, no Accept header other than `*/*` or `application/json`, and a method the view handles is
    answered here: the view's own authentication and permission classes, handler, exception handler,
    renderer and response headers, as APIView.dispatch uses them, but without the Request wrapper,
    content negotiation, versioning and throttling (these views have none). Anything else — OPTIONS,
    405, 406, `?format=`, a test client's forced authentication — goes through APIView.dispatch.

    Handlers get the Django request with `auth` and `user` set: they read the body with request_body,
    decode_batch or decode_object (not `request.data` or `request.query_params`).
    """

    def dispatch(self, request, *args, **kwargs):
        method = request.method.lower()
        handler = getattr(self, method, None) if method in self.http_method_names and method != "options" else None
        meta = request.META
        renderers = self.get_renderers()
        if (
            handler is None
            or meta.get("QUERY_STRING")
            or meta.get("HTTP_ACCEPT", "*/*") not in _PLAIN_ACCEPT
            or len(renderers) != 1
            or renderers[0].media_type != "application/json"
            or self.throttle_classes
            or self.versioning_class is not None
            or "_force_auth_user" in request.__dict__
            or "_force_auth_token" in request.__dict__
        ):
            return super().dispatch(request, *args, **kwargs)
        self.args, self.kwargs, self.request = args, kwargs, request
        self.headers = self.default_response_headers
        request.accepted_renderer, request.accepted_media_type = renderers[0], renderers[0].media_type
        try:
            self._authenticate(request)
            self._check_permissions(request)
            response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _authenticate(self, request) -> None:
        """Request.user's authentication: the first authenticator that recognises the request wins."""
        request.user = request.auth = None
        for authenticator in self.get_authenticators():
            if (user_auth := authenticator.authenticate(request)) is not None:
                request.user, request.auth = user_auth
                return

    def _check_permissions(self, request) -> None:
        """APIView.check_permissions: 401 without credentials, else 403 with the permission's message."""
        for permission in self.get_permissions():
            if not permission.has_permission(request, self):
                if request.auth is None:
                    raise exceptions.NotAuthenticated()
                raise exceptions.PermissionDenied(
                    detail=getattr(permission, "message", None), code=getattr(permission, "code", None)
                )

    def raise_uncaught_exception(self, exc):
        if isinstance(self.request, Request):
            super().raise_uncaught_exception(exc)
        raise exc
