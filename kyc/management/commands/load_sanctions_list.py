"""Load (or reload) an OFAC list from its legacy CSV files; a changed list re-screens every customer."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice import audit
from kyc import ofac, services


class Command(BaseCommand):
    help = "Load an OFAC list: --primary sdn.csv|cons_prim.csv [--alt alt.csv] [--comments sdn_comments.csv]"

    def add_arguments(self, parser):
        parser.add_argument("--source", default="OFAC_SDN", help="OFAC_SDN or OFAC_CONSOLIDATED")
        parser.add_argument("--primary", required=True, type=Path)
        parser.add_argument("--alt", type=Path)
        parser.add_argument("--comments", type=Path, help="the remarks overflow file")

    def handle(self, *args, source, primary, alt, comments, **options):
        try:
            result = services.load_ofac_list(
                source=source.upper(),
                primary=primary,
                alt=alt,
                comments=comments,
                actor=audit.Actor.system("load_sanctions_list"),
                now=timezone.now(),
            )
        except ofac.ListFormatError as exc:
            raise CommandError(str(exc)) from None
        version = result.version
        if not result.changed:
            self.stdout.write(f"{source}: version {version.version[:12]} is already loaded; nothing changed.")
            return
        self.stdout.write(
            f"{source}: loaded version {version.version[:12]} with {version.entries} entries "
            f"({version.added} added, {version.changed} changed, {version.removed} removed); "
            "every customer is re-screened."
        )
