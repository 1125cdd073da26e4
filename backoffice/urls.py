from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from backoffice import health
from backoffice.api import json_error_view

urlpatterns = [
    path("", include("accounts.urls")),
    # The admin's own password-only login is replaced by the two-factor staff login.
    path("admin/login/", RedirectView.as_view(pattern_name="staff-login", query_string=True)),
    path("admin/margin/", include("trading_risk.dashboard")),
    path("admin/", admin.site.urls),
    path("health", health.health, name="health"),
    path("health/", health.health),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("backoffice.api_urls")),
    path("reporting/", include("reporting.urls")),
]

handler404 = "backoffice.urls.not_found"
handler500 = "backoffice.urls.server_error"


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return json_error_view(404, "not_found", "There is nothing at this path.")(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return json_error_view(500, "internal_error", "The server failed; the request was not applied.")(request)
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)
