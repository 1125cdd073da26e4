"""Load sanctioned-address lists (sanctioned_addresses_<TICKER>.txt|json, address CSVs) as one source."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice import audit
from kyc import ofac, services


class Command(BaseCommand):
    help = "Load sanctioned-address list files (a directory or files) as one list source."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--source", default="OFAC_ADDRESSES")

    def handle(self, *args, paths, source, **options):
        files = [f for p in paths for f in (_list_files(p) if p.is_dir() else [p])]
        try:
            result = services.load_address_lists(
                source=source.upper(),
                paths=files,
                actor=audit.Actor.system("load_sanctioned_addresses"),
                now=timezone.now(),
            )
        except ofac.ListFormatError as exc:
            raise CommandError(str(exc)) from None
        state = "loaded" if result.changed else "already loaded; nothing changed"
        version = result.version
        self.stdout.write(f"{source}: {version.entries} addresses, version {version.version[:12]} {state}.")


def _list_files(directory: Path) -> list[Path]:
    # A 0xB10C directory holds each list twice (.txt and .json); the .txt files are enough.
    return sorted(directory.glob("sanctioned_addresses_*.txt")) + sorted(directory.glob("*.csv"))
