"""Load the GLEIF Registration Authorities List (the CSV downloaded from gleif.org) for IVMS101 checks."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice.audit import Actor
from backoffice.errors import DomainError
from withdrawals import registration_authorities


class Command(BaseCommand):
    help = (
        "Replace the GLEIF Registration Authorities List from its CSV download; travel-rule data must then "
        "name a registrationAuthority on it (without a loaded list only the RA code format is checked)."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv_file")

    def handle(self, *args, csv_file, **options):
        path = Path(csv_file)
        if not path.is_file():
            raise CommandError(f"no such file: {csv_file}")
        try:
            entries = registration_authorities.parse_csv(path.read_text(encoding="utf-8"))
            count = registration_authorities.replace_list(
                entries=entries,
                source=path.name,
                actor=Actor.system("load_gleif_registration_authorities"),
                now=timezone.now(),
            )
        except (DomainError, UnicodeDecodeError) as exc:
            raise CommandError(f"{csv_file}: {exc}") from None
        self.stdout.write(f"loaded {count} registration authorities from {path.name}")
