"""The API base, exercised through /api/v1/prices/ (a batch endpoint) and the reference-data PUTs."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backoffice import api_clients
from backoffice.audit import Actor
from tests.factories import NOW, make_api_client, make_staff
from trading_risk.models import AssetPrice

PRICES = "/api/v1/prices/"


def price(asset="BTC", usd="90000.5", at="2026-03-02T12:00:00Z", **extra):
    return {"asset": asset, "usd": usd, "at": at, **extra}


def post(client, body, path=PRICES, **kwargs):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.generic("POST", path, data, content_type=kwargs.pop("content_type", "application/json"), **kwargs)


def error(response):
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


class TestAuthentication:
    def test_no_token_is_401_in_the_error_format(self, db):
        response = post(APIClient(), [price()])

        assert response.status_code == 401
        assert error(response)["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")

    @pytest.mark.parametrize("header", ["Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc"])
    def test_a_bad_token_is_401(self, db, header):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)

        response = post(client, [price()])

        assert response.status_code == 401
        assert error(response)["code"] == "invalid_token"

    def test_a_revoked_token_is_401(self, db):
        record, token = make_api_client()
        api_clients.revoke_api_client(client=record, actor=Actor.system("tests"), reason="leaked", now=NOW)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

        response = post(client, [price()])

        assert response.status_code == 401

    def test_a_token_without_the_scope_is_403(self, db):
        _, token = make_api_client(scopes=("events",))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

        response = post(client, [price()])

        assert response.status_code == 403
        assert error(response)["code"] == "permission_denied"
        assert not AssetPrice.objects.exists()

    def test_a_staff_browser_session_is_not_accepted(self, db):
        client = APIClient()
        client.force_login(make_staff(roles=("administrator",)))

        response = post(client, [price()])

        assert response.status_code == 401

    def test_an_api_token_does_not_open_the_admin(self, db):
        _, token = make_api_client()

        response = APIClient().get("/admin/", HTTP_AUTHORIZATION=f"Bearer {token}")

        assert response.status_code == 302
        assert "/login/" in response["Location"]

    def test_only_a_hash_of_the_token_is_stored(self, db):
        record, token = make_api_client()

        assert token not in json.dumps([record.token_hash, record.token_prefix, record.name])
        assert record.token_hash == api_clients.hash_token(token)


class TestPaths:
    def test_answers_with_and_without_a_trailing_slash_without_redirecting(self, engine):
        with_slash = post(engine, [price(at="2026-03-02T12:00:00Z")], PRICES)
        without = post(engine, [price(at="2026-03-02T12:01:00Z")], PRICES.rstrip("/"))

        assert (with_slash.status_code, without.status_code) == (200, 200)

    def test_an_unknown_api_path_is_a_json_404(self, engine):
        response = engine.get("/api/v1/nothing-here")

        assert response.status_code == 404
        assert error(response)["code"] == "not_found"

    def test_a_wrong_method_is_405_in_the_error_format(self, engine):
        response = engine.get(PRICES)

        assert response.status_code == 405
        assert error(response)["code"] == "method_not_allowed"


class TestBatchValidation:
    @pytest.mark.parametrize(
        ("item", "field", "message"),
        [
            (price(usd=90000.5), "usd", "Expected `str`"),
            (price(usd="NaN"), "usd", "decimal string"),
            (price(usd="Infinity"), "usd", "decimal string"),
            (price(usd="1e5"), "usd", "decimal string"),
            (price(usd="-1"), "usd", "decimal string"),
            (price(usd="0"), "usd", "greater than zero"),
            (price(usd="1.0000000000000000001"), "usd", "decimal string"),
            (price(asset="btc"), "asset", "regex"),
            (price(at="2026-03-02T12:00:00"), "at", "timezone"),
            (price(at="yesterday"), "at", "datetime"),
            (price(colour="red"), "colour", "unknown field"),
            ({"usd": "1", "at": "2026-03-02T12:00:00Z"}, "asset", "required"),
            ({"asset": "BTC", "usd": "1", "mark_price": "1", "at": "2026-03-02T12:00:00Z"}, "asset", "either asset"),
            ({"asset": "BTC", "at": "2026-03-02T12:00:00Z"}, "usd", "required"),
            ({"asset": "BTC", "usd": "1"}, "at", "missing required field"),
            ("BTC", None, "Expected `object`"),
        ],
    )
    def test_refuses_a_bad_item_naming_its_index_and_field_and_stores_nothing(self, engine, item, field, message):
        response = post(engine, [price(at="2026-03-02T11:00:00Z"), item])

        assert response.status_code == 400
        body = error(response)
        assert body["code"] == "invalid_request"
        assert len(body["details"]) == 1
        assert body["details"][0]["index"] == 1
        assert body["details"][0]["field"] == field
        assert message in body["details"][0]["message"]
        assert not AssetPrice.objects.exists()

    def test_lists_every_bad_item(self, engine):
        items = [
            price(usd="x", at=f"2026-03-02T12:0{i}:00Z") if i % 2 else price(at=f"2026-03-02T12:0{i}:00Z")
            for i in range(6)
        ]

        response = post(engine, items)

        assert [d["index"] for d in error(response)["details"]] == [1, 3, 5]

    def test_refuses_duplicate_ids_inside_one_batch(self, engine):
        response = post(engine, [price(), price(usd="2")])

        assert response.status_code == 400
        assert error(response)["details"] == [
            {"index": 1, "field": "at", "message": "duplicate of item 0 in this batch"}
        ]

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"{not json", "invalid_json"),
            (b"", "invalid_json"),
            (b'{"asset": "BTC"}', "invalid_request"),
            (b"[]", "invalid_request"),
            (b'[{"asset":"BTC","usd":"1","at":"2026-03-02T12:00:00Z",}]', "invalid_json"),
            (b"[NaN]", "invalid_json"),
        ],
    )
    def test_refuses_malformed_bodies(self, engine, body, code):
        response = post(engine, body)

        assert response.status_code == 400
        assert error(response)["code"] == code

    def test_refuses_other_content_types(self, engine):
        response = post(engine, json.dumps([price()]), content_type="text/plain")

        assert response.status_code == 415
        assert error(response)["code"] == "unsupported_media_type"

    def test_refuses_more_than_10000_items(self, engine):
        start = timezone.now()
        items = [price(at=(start + timedelta(seconds=i)).isoformat()) for i in range(10_001)]

        response = post(engine, items)

        assert response.status_code == 400
        assert error(response)["code"] == "batch_too_large"
        assert not AssetPrice.objects.exists()

    def test_refuses_a_huge_body_before_reading_it(self, engine, settings):
        settings.API_MAX_BODY_BYTES = 1000

        response = post(engine, [price(at=f"2026-03-02T12:{i:02d}:00Z") for i in range(50)])

        assert response.status_code == 413
        assert error(response)["code"] == "payload_too_large"

    def test_accepts_exactly_10000_items(self, engine):
        start = NOW
        items = [price(at=(start + timedelta(seconds=i)).isoformat()) for i in range(10_000)]

        response = post(engine, items)

        assert response.status_code == 200
        assert response.json() == {"accepted": 10_000, "duplicates": 0}


class TestIdempotency:
    def test_the_same_batch_again_is_all_duplicates_and_stores_nothing_new(self, engine):
        batch = [price(at="2026-03-02T12:00:00Z"), price(asset="ETH", usd="3000", at="2026-03-02T12:00:00Z")]
        first = post(engine, batch)

        again = post(engine, batch)

        assert first.json() == {"accepted": 2, "duplicates": 0}
        assert again.json() == {"accepted": 0, "duplicates": 2}
        assert AssetPrice.objects.count() == 2

    def test_the_same_value_written_differently_is_still_a_duplicate(self, engine):
        post(engine, [price(usd="90000.50", at="2026-03-02T12:00:00Z")])

        again = post(engine, [price(usd="90000.5", at="2026-03-02T14:00:00+02:00")])

        assert again.json() == {"accepted": 0, "duplicates": 1}

    def test_the_same_id_with_another_payload_is_409_and_nothing_of_the_batch_is_stored(self, engine):
        post(engine, [price(usd="90000", at="2026-03-02T12:00:00Z")])

        response = post(engine, [price(asset="ETH", usd="3000"), price(usd="91000", at="2026-03-02T12:00:00Z")])

        assert response.status_code == 409
        body = error(response)
        assert body["code"] == "idempotency_conflict"
        assert body["details"] == [{"index": 1, "field": "at", "message": "already received with a different value"}]
        assert not AssetPrice.objects.filter(asset="ETH").exists()


class TestTokenCache:
    def test_a_revocation_takes_effect_at_once_in_the_revoking_process(self, db):
        record, token = make_api_client()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        before = post(client, [price()])

        api_clients.revoke_api_client(client=record, actor=Actor.system("tests"), reason="leaked", now=NOW)
        after = post(client, [price(at="2026-03-02T13:00:00Z")])

        assert (before.status_code, after.status_code) == (200, 401)

    def test_other_processes_read_the_revocation_within_the_cache_period(self, db, settings):
        from backoffice.models import ApiClient

        settings.API_TOKEN_CACHE_SECONDS = 0
        record, token = make_api_client()
        assert api_clients.client_for_token(token) == record

        ApiClient.objects.filter(pk=record.pk).update(revoked_at=NOW)  # as another process's revocation

        assert api_clients.client_for_token(token) is None
