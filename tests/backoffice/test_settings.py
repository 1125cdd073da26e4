import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from backoffice.settings import database_from_url

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "backoffice.example.com",
    "DJANGO_SETTINGS_MODULE": "backoffice.settings",
}


def manage(*args, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=120
    )


class TestProductionSettings:
    def test_pass_the_deployment_checklist_without_warnings(self):
        result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

        assert result.returncode == 0, result.stderr
        assert "no issues" in result.stdout

    def test_refuse_to_start_without_a_secret_key(self):
        result = manage("check", **{k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"})

        assert result.returncode != 0
        assert "Set the SECRET_KEY environment variable" in result.stderr

    def test_refuse_a_boolean_that_is_not_true_or_false(self):
        result = manage("check", **PRODUCTION | {"DEBUG": "yes please"})

        assert result.returncode != 0
        assert "DEBUG must be 'true' or 'false'" in result.stderr


class TestDatabaseUrl:
    def test_parses_every_part(self):
        db = database_from_url("postgres://bo%40user:p%2Fw@db.internal:6543/back_office?sslmode=require")

        assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
            "bo@user",
            "p/w",
            "db.internal",
            "6543",
            "back_office",
        )
        assert db["OPTIONS"] == {"sslmode": "require"}

    @pytest.mark.parametrize("url", ["mysql://x@y/z", "postgres://x@y", "nonsense"])
    def test_refuses_what_is_not_a_postgres_url(self, url):
        from django.core.exceptions import ImproperlyConfigured

        with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
            database_from_url(url)
