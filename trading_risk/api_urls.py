from backoffice.api import route
from trading_risk import api

urlpatterns = [
    route(r"instruments/(?P<symbol>[^/]+)", api.PutInstrumentApi.as_view(), name="api-instrument"),
    route(r"prices", api.PostPricesApi.as_view(), name="api-prices"),
]
