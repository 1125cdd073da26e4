from django.apps import AppConfig


class TradingRiskConfig(AppConfig):
    name = "trading_risk"
    verbose_name = "Trading risk"

    def ready(self):
        from backoffice import approvals
        from trading_risk import emergency, risk_limits

        for action in emergency.change_actions():
            approvals.register(action)
        approvals.register(risk_limits.change_action())
        from trading_risk import position_limits

        for action in position_limits.change_actions():
            approvals.register(action)
