from django.apps import AppConfig


class WithdrawalsConfig(AppConfig):
    name = "withdrawals"
    verbose_name = "Withdrawals and wallets"

    def ready(self):
        from backoffice import approvals
        from withdrawals import controls

        for action in controls.change_actions():
            approvals.register(action)
