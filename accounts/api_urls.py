from accounts import api
from backoffice.api import route

urlpatterns = [
    route(r"customers/(?P<customer_id>[^/]+)", api.PutCustomerApi.as_view(), name="api-customer"),
    route(
        r"accounts/(?P<account_id>[^/]+)/restrictions",
        api.GetAccountRestrictionsApi.as_view(),
        name="api-account-restrictions",
    ),
    route(r"accounts/(?P<account_id>[^/]+)", api.PutAccountApi.as_view(), name="api-account"),
    route(r"security-events", api.PostSecurityEventsApi.as_view(), name="api-security-events"),
    route(r"restrictions/changes", api.GetRestrictionChangesApi.as_view(), name="api-restriction-changes"),
]
