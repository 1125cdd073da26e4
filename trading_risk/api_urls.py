from backoffice.api import route
from trading_risk import api

urlpatterns = [
    route(r"instruments/(?P<symbol>[^/]+)", api.PutInstrumentApi.as_view(), name="api-instrument"),
    route(r"prices", api.PostPricesApi.as_view(), name="api-prices"),
    route(r"trades", api.PostTradesApi.as_view(), name="api-trades"),
    route(r"order-events", api.PostOrderEventsApi.as_view(), name="api-order-events"),
    route(r"pre-trade-checks", api.PostPreTradeCheckApi.as_view(), name="api-pre-trade-checks"),
]
