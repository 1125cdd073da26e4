from django.core.management.base import BaseCommand, CommandError

from backoffice import audit
from backoffice.models import OperationsLogEntry


class Command(BaseCommand):
    help = "Walk the operations log's hash chain and report the first broken link (exit 1 if any)."

    def handle(self, *args, **options):
        broken = audit.first_broken_link()
        if broken is not None:
            raise CommandError(f"operations log broken at entry #{broken.entry_id}: {broken.problem}")
        count = OperationsLogEntry.objects.count()
        self.stdout.write(f"operations log intact: {count} entries, every link verified")
