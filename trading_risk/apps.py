from django.apps import AppConfig


class TradingRiskConfig(AppConfig):
    name = "trading_risk"
    verbose_name = "Trading risk"

    def ready(self):
        from backoffice import approvals
        from trading_risk import emergency, liquidation, position_limits, risk_limits

        for action in [
            *emergency.change_actions(),
            *position_limits.change_actions(),
            risk_limits.change_action(),
            liquidation.adjustment_action(),
        ]:
            approvals.register(action)
