from accounts import api
from backoffice.api import route

urlpatterns = [
    route(r"customers/(?P<customer_id>[^/]+)", api.PutCustomerApi.as_view(), name="api-customer"),
    route(r"accounts/(?P<account_id>[^/]+)", api.PutAccountApi.as_view(), name="api-account"),
]
