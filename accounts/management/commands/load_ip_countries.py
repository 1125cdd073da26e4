from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts import geoip
from backoffice.audit import Actor
from backoffice.errors import DomainError


class Command(BaseCommand):
    help = "Replace the IP-to-country ranges from a CSV of network,country or first_ip,last_ip,country."

    def add_arguments(self, parser):
        parser.add_argument("csv_file")

    def handle(self, *args, csv_file, **options):
        path = Path(csv_file)
        if not path.is_file():
            raise CommandError(f"no such file: {csv_file}")
        try:
            with path.open(newline="", encoding="utf-8") as lines:
                ranges = geoip.parse_rows(lines)
            count = geoip.replace_ranges(
                ranges=ranges, source=path.name, actor=Actor.system("load_ip_countries"), now=timezone.now()
            )
        except (DomainError, UnicodeDecodeError) as exc:
            raise CommandError(f"{csv_file}: {exc}") from None
        self.stdout.write(f"loaded {count} IP ranges from {path.name}")
