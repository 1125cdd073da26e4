import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backoffice import api_clients
from backoffice.models import ApiClient, OperationsLogEntry


class TestCreateApiClient:
    def test_prints_a_working_token_once_and_stores_only_its_hash(self, db, capsys):
        call_command("create_api_client", "matching-engine")

        token = capsys.readouterr().out.strip()
        client = ApiClient.objects.get(name="matching-engine")
        assert api_clients.client_for_token(token) == client
        assert client.token_hash != token
        assert client.scopes == sorted(api_clients.DEFAULT_SCOPES)
        assert OperationsLogEntry.objects.filter(action="api_client.create").exists()

    def test_takes_scopes(self, db, capsys):
        call_command("create_api_client", "importer", "--scopes", "reference,kyc_import")

        assert ApiClient.objects.get(name="importer").scopes == ["kyc_import", "reference"]

    @pytest.mark.parametrize("scopes", ["everything", ""])
    def test_refuses_unknown_or_no_scopes_and_creates_nothing(self, db, scopes):
        with pytest.raises(CommandError, match="scope"):
            call_command("create_api_client", "x", "--scopes", scopes)

        assert not ApiClient.objects.exists()

    def test_refuses_a_taken_name(self, db):
        call_command("create_api_client", "engine")

        with pytest.raises(CommandError, match="exists already"):
            call_command("create_api_client", "engine")
