from django.apps import AppConfig


class KycConfig(AppConfig):
    name = "kyc"
    verbose_name = "KYC and sanctions"

    def ready(self):
        from backoffice import approvals
        from kyc.services import requirements

        approvals.register(requirements.change_action())
