"""Print a demo staff member's current TOTP code, so demo users can log in without a phone."""

import pyotp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.staff_auth import TOTP_ISSUER


class Command(BaseCommand):
    help = "Print a staff member's current TOTP code and otpauth URI (only with DEMO_MODE on)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        # Printing a second factor defeats it; that is only acceptable on a demo installation.
        if not settings.DEMO_MODE:
            raise CommandError("Refused: demo_totp_code only works with DEMO_MODE=true.")
        user = User.objects.filter(username=username).first()
        if user is None or not user.totp_secret:
            raise CommandError(f"There is no staff member {username!r} with an authenticator.")
        totp = pyotp.TOTP(user.totp_secret)
        self.stdout.write(totp.now())
        self.stdout.write(totp.provisioning_uri(name=user.get_username(), issuer_name=TOTP_ISSUER))
