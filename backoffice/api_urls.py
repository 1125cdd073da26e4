"""Everything under /api/v1/, gathered from the apps."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api_urls")),
    path("", include("trading_risk.api_urls")),
    path("", include("withdrawals.api_urls")),
]
