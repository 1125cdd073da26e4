from backoffice.api import route
from withdrawals import api

urlpatterns = [
    route(r"withdrawals", api.PostWithdrawalApi.as_view(), name="api-withdrawals"),
    route(
        r"withdrawals/(?P<request_id>[^/]+)/travel-rule",
        api.GetTravelRuleApi.as_view(),
        name="api-withdrawal-travel-rule",
    ),
    route(r"withdrawals/(?P<request_id>[^/]+)", api.GetWithdrawalApi.as_view(), name="api-withdrawal"),
    route(r"withdrawal-assets", api.GetAssetsApi.as_view(), name="api-withdrawal-assets"),
    route(r"wallet-balances", api.PostWalletBalancesApi.as_view(), name="api-wallet-balances"),
    route(r"wallet-flows", api.PostWalletFlowsApi.as_view(), name="api-wallet-flows"),
]
