"""Load (or reload) a person watchlist CSV, e.g. a PEP list; a changed list re-screens every customer."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice import audit
from kyc import ofac, services


class Command(BaseCommand):
    help = "Load a person watchlist CSV (full_name[, id, date_of_birth, nationality, aliases, program])."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--source", required=True, help="e.g. PEP_US_CONGRESS")

    def handle(self, *args, path, source, **options):
        try:
            result = services.load_people_list(
                source=source.upper(), path=path, actor=audit.Actor.system("load_watchlist"), now=timezone.now()
            )
        except ofac.ListFormatError as exc:
            raise CommandError(str(exc)) from None
        version = result.version
        state = (
            f"loaded ({version.added} added, {version.changed} changed, {version.removed} removed)"
            if result.changed
            else "already loaded; nothing changed"
        )
        self.stdout.write(f"{source}: {version.entries} entries, version {version.version[:12]} {state}.")
