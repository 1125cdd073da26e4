from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice import api_clients
from backoffice.audit import Actor
from backoffice.errors import DomainError


class Command(BaseCommand):
    help = "Create an API client and print its bearer token (shown this once; only a hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scopes",
            default=",".join(api_clients.DEFAULT_SCOPES),
            help=f"comma-separated, from: {', '.join(api_clients.SCOPES)} (default: %(default)s)",
        )

    def handle(self, *args, name, scopes, **options):
        try:
            client, token = api_clients.create_api_client(
                name=name,
                scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                actor=Actor.system("create_api_client"),
                now=timezone.now(),
            )
        except DomainError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"created API client {client.name!r} with scopes {', '.join(client.scopes)}; "
            "the token below is shown only now:"
        )
        self.stdout.write(token)
