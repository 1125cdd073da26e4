from django.apps import AppConfig


class TradingRiskConfig(AppConfig):
    name = "trading_risk"
    verbose_name = "Trading risk"

    def ready(self):
        from backoffice import approvals
        from trading_risk import emergency

        for action in emergency.change_actions():
            approvals.register(action)
