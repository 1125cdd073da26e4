from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice import demo
from backoffice.errors import DomainError


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ArgumentTypeError("must be 0 or more")
    return number


class Command(BaseCommand):
    help = "Load a believable demo exchange, the same for the same --seed (only timestamps follow the clock)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--customers", type=_count, default=demo.DemoOptions.customers)
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the database already has customers"
        )

    def handle(self, *args, seed: int, customers: int, if_empty: bool, **options):
        if if_empty and demo.is_loaded():
            self.stdout.write("Demo data not loaded: the database already has customers.")
            return
        try:
            token = demo.load(
                seed=seed, options=demo.DemoOptions(customers=customers), now=timezone.now(), report=self.stdout.write
            )
        except DomainError as exc:
            raise CommandError(f"nothing was loaded: {exc}") from None
        if token is None:
            self.stdout.write(f"API client {demo.ENGINE_CLIENT_NAME!r} exists already; its token is not shown again.")
        else:
            self.stdout.write(f"API client {demo.ENGINE_CLIENT_NAME!r} created. Its token, shown only now:")
            self.stdout.write(token)
