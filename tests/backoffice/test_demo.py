from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Customer, User
from backoffice import demo
from backoffice.models import ApiClient, OperationsLogEntry
from trading_risk.models import AssetPrice, Instrument, InstrumentPrice

ASSETS = {"BTC", "ETH", "SOL", "XRP", "USDT", "USDC", "TRX", "LTC"}


def load_demo(*args: str) -> str:
    out = StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


def customers_and_accounts() -> list[tuple]:
    customers = Customer.objects.order_by("external_id").values_list(
        "external_id", "type", "name", "country", "email", "phone", "date_of_birth", "kyc_level", "created_at"
    )
    accounts = Account.objects.order_by("external_id").values_list("external_id", "customer__external_id", "kind")
    return [*customers, *accounts]


@pytest.fixture
def loaded(db):
    return load_demo("--seed", "7", "--customers", "60")


class TestLoadDemo:
    def test_the_same_seed_builds_the_same_customers_and_accounts(self, db):
        runs = []
        for _ in range(2):
            with transaction.atomic():
                load_demo("--seed", "7", "--customers", "60")
                runs.append(customers_and_accounts())
                transaction.set_rollback(True)

        load_demo("--seed", "8", "--customers", "60")

        assert len(runs[0]) > 60
        assert runs[0] == runs[1]
        assert customers_and_accounts() != runs[0]

    def test_customers_are_mostly_individuals_with_corporates_and_market_makers(self, loaded):
        by_type = {t: Customer.objects.filter(type=t).count() for t in Customer.Type}

        assert by_type == {
            Customer.Type.INDIVIDUAL: 51,
            Customer.Type.CORPORATE: 7,
            Customer.Type.MARKET_MAKER: 2,
        }
        assert not Customer.objects.filter(type=Customer.Type.INDIVIDUAL, date_of_birth__isnull=True).exists()
        assert not Customer.objects.filter(accounts__isnull=True).exists()
        assert Account.objects.count() <= 3 * 60

    def test_every_role_has_a_demo_user_enrolled_in_totp(self, loaded):
        users = User.objects.filter(username__in=["risk", "compliance", "ops", "auditor", "admin"])

        roles = {user.username: [g.name for g in user.groups.all()] for user in users}
        assert roles == {
            "risk": ["risk officer"],
            "compliance": ["compliance officer"],
            "ops": ["operations"],
            "auditor": ["auditor"],
            "admin": ["administrator"],
        }
        assert all(u.is_staff and u.has_second_factor and u.check_password(demo.DEMO_PASSWORD) for u in users)
        assert [u.username for u in users if u.is_superuser] == ["admin"]

    def test_instruments_include_a_pair_listed_within_the_last_15_minutes(self, loaded):
        now = timezone.now()

        symbols = set(Instrument.objects.values_list("symbol", flat=True))
        fresh = Instrument.objects.filter(listed_at__gt=now - timedelta(minutes=15), listed_at__lte=now)
        assert {"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ETHBTC", "BTCUSDT-PERP"} <= symbols
        assert Instrument.objects.filter(kind=Instrument.Kind.FUTURE, expires_at__gt=now).count() == 1
        assert fresh.count() == 1

    def test_every_asset_has_a_week_of_hourly_prices_up_to_the_current_hour(self, loaded):
        hour = timezone.now().replace(minute=0, second=0, microsecond=0)

        for asset in ASSETS:
            times = list(AssetPrice.objects.filter(asset=asset).values_list("at", flat=True))
            assert len(times) == 7 * 24 + 1, asset
            assert max(times) in (hour, hour - timedelta(hours=1)), asset  # the load may straddle an hour
        traded = set(Instrument.objects.values_list("base", flat=True)) | set(
            Instrument.objects.values_list("quote", flat=True)
        )
        assert traded - {"USD"} <= ASSETS
        btc = AssetPrice.objects.filter(asset="BTC").order_by("-at").first().usd
        assert 60_000 < btc < 120_000
        derivatives = InstrumentPrice.objects.values_list("instrument__kind", flat=True).distinct()
        assert set(derivatives) == {Instrument.Kind.PERPETUAL, Instrument.Kind.FUTURE}

    def test_the_operations_log_records_the_load_as_the_system(self, loaded):
        entries = OperationsLogEntry.objects.filter(actor="system:load_demo")

        actions = set(entries.values_list("action", flat=True))
        assert {"staff.create", "instrument.create", "customer.bulk_create", "prices.ingest", "api_client.create"} <= (
            actions
        )
        assert ApiClient.objects.filter(name="matching-engine", revoked_at__isnull=True).exists()
        assert loaded.strip().splitlines()[-1].startswith("bo_")

    def test_if_empty_does_nothing_when_customers_exist(self, loaded):
        log_size = OperationsLogEntry.objects.count()

        output = load_demo("--seed", "7", "--customers", "60", "--if-empty")

        assert output.strip().count("\n") == 0
        assert OperationsLogEntry.objects.count() == log_size

    def test_loading_again_adds_nothing_and_keeps_the_staff_second_factor(self, loaded):
        secret = User.objects.get(username="risk").totp_secret
        counts = (Customer.objects.count(), Account.objects.count(), AssetPrice.objects.count())

        output = load_demo("--seed", "7", "--customers", "60")

        assert (Customer.objects.count(), Account.objects.count(), AssetPrice.objects.count()) == counts
        assert User.objects.get(username="risk").totp_secret == secret
        assert "exists already" in output
