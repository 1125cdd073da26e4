"""Screen every customer against the loaded lists now (the daily Celery task does the same)."""

from django.core.management.base import BaseCommand
from django.utils import timezone

from backoffice import audit
from kyc import services


class Command(BaseCommand):
    help = "Screen every customer against the loaded sanctions lists."

    def handle(self, *args, **options):
        summary = services.rescreen_all(actor=audit.Actor.system("rescreen_customers"), now=timezone.now())
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in summary.items()))
