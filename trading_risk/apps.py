from django.apps import AppConfig


class TradingRiskConfig(AppConfig):
    name = "trading_risk"
    verbose_name = "Trading risk"
