from backoffice.api import route
from trading_risk import api, api_liquidation, api_margin

urlpatterns = [
    route(r"instruments/(?P<symbol>[^/]+)", api.PutInstrumentApi.as_view(), name="api-instrument"),
    route(r"prices", api.PostPricesApi.as_view(), name="api-prices"),
    route(r"trades", api.PostTradesApi.as_view(), name="api-trades"),
    route(r"order-events", api.PostOrderEventsApi.as_view(), name="api-order-events"),
    route(r"pre-trade-checks", api.PostPreTradeCheckApi.as_view(), name="api-pre-trade-checks"),
    route(r"liquidation-queue", api_liquidation.GetLiquidationQueueApi.as_view(), name="api-liquidation-queue"),
    route(r"adl-ranking/(?P<symbol>[^/]+)", api_liquidation.GetAdlRankingApi.as_view(), name="api-adl-ranking"),
    route(r"liquidations", api_liquidation.PostLiquidationsApi.as_view(), name="api-liquidations"),
    route(r"positions", api_margin.PostPositionsApi.as_view(), name="api-positions"),
    route(r"balances", api_margin.PostBalancesApi.as_view(), name="api-balances"),
    route(
        r"accounts/(?P<account_id>[^/]+)/margin", api_margin.GetAccountMarginApi.as_view(), name="api-account-margin"
    ),
]
