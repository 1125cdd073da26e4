import json

import pytest
from rest_framework.test import APIClient

from accounts.models import Account, Customer
from backoffice.models import OperationsLogEntry
from tests.factories import make_api_client


def put(client, path, body):
    return client.put(path, json.dumps(body), content_type="application/json")


def customer(**fields):
    return {
        "type": "individual",
        "name": "Ada Lovelace",
        "country": "GB",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "date_of_birth": "1990-12-10",
        **fields,
    }


@pytest.fixture
def importer(db):
    _, token = make_api_client(scopes=("reference", "kyc_import"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


class TestPutCustomer:
    def test_creates_a_customer_and_logs_it(self, engine):
        response = put(engine, "/api/v1/customers/C-1", customer())

        assert response.status_code == 201
        assert response.json()["customer_id"] == "C-1"
        assert Customer.objects.get(external_id="C-1").type == Customer.Type.INDIVIDUAL
        assert OperationsLogEntry.objects.get(action="customer.create").actor.startswith("api:")

    def test_sending_the_same_customer_again_changes_nothing(self, engine):
        put(engine, "/api/v1/customers/C-1", customer())

        response = put(engine, "/api/v1/customers/C-1", customer())

        assert response.status_code == 200
        assert OperationsLogEntry.objects.filter(target_type="accounts.customer").count() == 1

    def test_an_update_records_before_and_after(self, engine):
        put(engine, "/api/v1/customers/C-1", customer())

        put(engine, "/api/v1/customers/C-1", customer(email="ada@lovelace.example"))

        entry = OperationsLogEntry.objects.get(action="customer.update")
        assert (entry.before["email"], entry.after["email"]) == ("ada@example.com", "ada@lovelace.example")

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (customer(type="robot"), "type"),
            (customer(country="gb"), "country"),
            (customer(email="not-an-email"), "email"),
            (customer(phone="call me"), "phone"),
            (customer(name=""), "name"),
            (customer(name="   "), "name"),
            (customer(date_of_birth="2999-01-01"), "date_of_birth"),
            (customer(date_of_birth="10/12/1990"), "date_of_birth"),
            (customer(nickname="Ada"), "nickname"),
            ({k: v for k, v in customer().items() if k != "email"}, "email"),
        ],
    )
    def test_refuses_bad_customers_and_stores_nothing(self, engine, body, field):
        response = put(engine, "/api/v1/customers/C-1", body)

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == field
        assert not Customer.objects.exists()

    def test_refuses_a_bad_id_in_the_path(self, engine):
        response = put(engine, "/api/v1/customers/" + "x" * 65, customer())

        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == "customer_id"


class TestImportedKycLevel:
    def test_needs_the_kyc_import_scope(self, engine):
        response = put(engine, "/api/v1/customers/C-1", customer(kyc_level=2))

        assert response.status_code == 403
        assert not Customer.objects.exists()

    def test_is_recorded_as_imported(self, importer):
        put(importer, "/api/v1/customers/C-1", customer(kyc_level=2))

        stored = Customer.objects.get()
        assert (stored.kyc_level, stored.kyc_level_source) == (2, Customer.KycSource.IMPORTED)
        assert "imported" in OperationsLogEntry.objects.get(action="customer.create").reason

    def test_never_lowers_a_level(self, importer):
        put(importer, "/api/v1/customers/C-1", customer(kyc_level=3))

        put(importer, "/api/v1/customers/C-1", customer(kyc_level=1))

        assert Customer.objects.get().kyc_level == 3

    def test_never_overrides_a_level_decided_in_the_back_office(self, importer):
        put(importer, "/api/v1/customers/C-1", customer())
        Customer.objects.update(kyc_level=1, kyc_level_source=Customer.KycSource.DECIDED)

        put(importer, "/api/v1/customers/C-1", customer(kyc_level=3))

        assert Customer.objects.get().kyc_level == 1

    @pytest.mark.parametrize("level", [-1, 4, "2", 2.0])
    def test_refuses_levels_outside_0_to_3(self, importer, level):
        response = put(importer, "/api/v1/customers/C-1", customer(kyc_level=level))

        assert response.status_code == 400


class TestPutAccount:
    def test_creates_an_account_of_a_known_customer(self, engine):
        put(engine, "/api/v1/customers/C-1", customer())

        response = put(engine, "/api/v1/accounts/A-1", {"customer_id": "C-1", "kind": "futures"})

        assert response.status_code == 201
        assert Account.objects.get(external_id="A-1").kind == Account.Kind.FUTURES

    def test_refuses_an_unknown_customer(self, engine):
        response = put(engine, "/api/v1/accounts/A-1", {"customer_id": "C-404", "kind": "spot"})

        assert response.status_code == 400
        assert response.json()["error"]["details"] == [{"field": "customer_id", "message": "unknown customer"}]

    def test_refuses_to_move_an_account_to_another_customer(self, engine):
        put(engine, "/api/v1/customers/C-1", customer())
        put(engine, "/api/v1/customers/C-2", customer(email="b@example.com"))
        put(engine, "/api/v1/accounts/A-1", {"customer_id": "C-1", "kind": "spot"})

        response = put(engine, "/api/v1/accounts/A-1", {"customer_id": "C-2", "kind": "spot"})

        assert response.status_code == 409
        assert response.json()["error"]["code"] == "account_owner_change"
        assert Account.objects.get().customer.external_id == "C-1"


class TestScreeningOnCustomerChanges:
    def test_a_new_customer_on_a_sanctions_list_is_restricted_once_committed(
        self, engine, tmp_path, django_capture_on_commit_callbacks
    ):
        from kyc import services as kyc
        from kyc.models import ScreeningHit
        from tests.factories import NOW, SYSTEM
        from tests.kyc.builders import ofac_row, write_ofac

        sdn = write_ofac(tmp_path / "sdn.csv", [ofac_row(1, "KARIMOV, Rustam Ilyich")])
        kyc.load_ofac_list(source="OFAC_SDN", primary=sdn, actor=SYSTEM, now=NOW)

        with django_capture_on_commit_callbacks(execute=True):
            put(engine, "/api/v1/customers/C-1", customer(name="Rustam Karimov", country="UZ"))
            put(engine, "/api/v1/accounts/A-1", {"customer_id": "C-1", "kind": "spot"})

        assert ScreeningHit.objects.filter(customer__external_id="C-1", status="OPEN").exists()
        state = engine.get("/api/v1/accounts/A-1/restrictions").json()
        assert "sanctions_hit" in [r["code"] for r in state["reasons"]]

    def test_a_change_of_email_alone_does_not_screen_again(self, engine, django_capture_on_commit_callbacks):
        put(engine, "/api/v1/customers/C-1", customer())

        with django_capture_on_commit_callbacks() as callbacks:
            put(engine, "/api/v1/customers/C-1", customer(email="new@example.com"))

        assert callbacks == []
