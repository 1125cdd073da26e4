"""The API's short middleware stack, the lean dispatch of the hot endpoints, the cheap health check, the
prepared statements and the web process's gunicorn settings."""

import json
import select
import time

import psycopg2
import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import SecurityEvent
from backoffice.prepared import Prepared
from tests.factories import NOW, make_customer, make_staff

EVENTS = "/api/v1/security-events/"  # a LeanApiView
PRICES = "/api/v1/prices/"  # a plain APIView


def login(event_id="E1", **extra):
    return json.dumps(
        [
            {
                "event_id": event_id,
                "type": "login",
                "ip": "203.0.113.7",
                "device_id": "d-1",
                "at": NOW.isoformat(),
                **extra,
            }
        ]
    )


@pytest.fixture
def customer(db):
    return make_customer(external_id="C-1")


def error(response):
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


class TestApiMiddleware:
    @pytest.mark.parametrize("path", [EVENTS, EVENTS.rstrip("/"), PRICES])
    def test_api_responses_keep_the_security_headers(self, engine, customer, path):
        body = login(customer_id="C-1") if "security" in path else "[]"

        response = engine.post(path, body, content_type="application/json")

        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert int(response["Content-Length"]) == len(response.content)

    def test_an_api_request_with_a_staff_session_sets_no_cookie_and_leaves_the_session_alone(self, engine, customer):
        staff = Client()
        staff.force_login(make_staff(roles=("administrator",)))
        engine.cookies = staff.cookies

        response = engine.post(EVENTS, login(customer_id="C-1"), content_type="application/json")

        assert response.status_code == 200
        assert not response.cookies
        assert "Cookie" not in response.get("Vary", "")

    def test_a_staff_session_still_opens_nothing_on_the_api(self, db):
        client = APIClient()
        client.force_login(make_staff(roles=("administrator",)))

        response = client.post(EVENTS, login(), content_type="application/json")

        assert response.status_code == 401
        assert error(response)["code"] == "not_authenticated"

    def test_staff_pages_still_get_sessions_and_the_staff_login(self, db):
        response = Client().get("/admin/")

        assert response.status_code == 302
        assert "/login/" in response["Location"]

    def test_an_unknown_api_path_is_still_a_json_404(self, engine):
        response = engine.post("/api/v1/no-such-thing/", "{}", content_type="application/json")

        assert response.status_code == 404
        assert error(response)["code"] == "not_found"


class TestLeanDispatch:
    def test_the_common_case_answers_like_drf(self, engine, customer):
        response = engine.post(EVENTS, login(customer_id="C-1"), content_type="application/json", HTTP_ACCEPT="*/*")

        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response["Allow"] == "POST, OPTIONS"
        assert response.json()["accepted"] == 1
        assert SecurityEvent.objects.filter(event_id="E1").exists()

    def test_a_token_without_the_scope_is_403(self, db, customer):
        from tests.factories import make_api_client

        _, token = make_api_client(scopes=("decisions",))

        response = APIClient().post(
            EVENTS, login(customer_id="C-1"), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )

        assert response.status_code == 403
        assert error(response)["code"] == "permission_denied"
        assert not SecurityEvent.objects.exists()

    @pytest.mark.parametrize("header", ["Bearer nope", "Basic dXNlcjpwYXNz"])
    def test_a_bad_token_is_401_with_the_challenge(self, db, header):
        response = APIClient().post(EVENTS, login(), content_type="application/json", HTTP_AUTHORIZATION=header)

        assert response.status_code == 401
        assert error(response)["code"] == "invalid_token"
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'

    def test_an_accept_header_the_api_cannot_satisfy_is_406(self, engine, customer):
        response = engine.post(
            EVENTS, login(customer_id="C-1"), content_type="application/json", HTTP_ACCEPT="text/html"
        )

        assert response.status_code == 406
        assert error(response)["code"] == "not_acceptable"
        assert not SecurityEvent.objects.exists()

    def test_an_unknown_format_suffix_is_404(self, engine, customer):
        response = engine.post(f"{EVENTS}?format=xml", login(customer_id="C-1"), content_type="application/json")

        assert response.status_code == 404
        assert not SecurityEvent.objects.exists()

    def test_a_wrong_method_is_405_and_options_describes_the_endpoint(self, engine):
        wrong = engine.get(EVENTS)
        options = engine.options(EVENTS)

        assert wrong.status_code == 405
        assert error(wrong)["code"] == "method_not_allowed"
        assert options.status_code == 200
        assert options.json()["parses"] == ["application/json"]

    def test_bad_input_is_400_in_the_error_format(self, engine, customer):
        response = engine.post(EVENTS, login(customer_id="C-1", extra_field=1), content_type="application/json")

        assert response.status_code == 400
        assert error(response)["details"][0]["field"] == "extra_field"

    def test_the_test_clients_forced_authentication_still_works(self, db, customer):
        from tests.factories import make_api_client

        record, _ = make_api_client()
        client = APIClient()
        client.force_authenticate(user=record, token=record)

        response = client.post(EVENTS, login(customer_id="C-1"), content_type="application/json")

        assert response.status_code == 200


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestHealthCheck:
    def test_a_connection_the_server_ended_is_replaced_before_the_next_query(self, settings):
        connection.ensure_connection()
        connection.health_check_enabled = True
        old_pid = connection.connection.get_backend_pid()
        _terminate(old_pid)
        _wait_until_readable(connection.connection)

        connection.health_check_done = False
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            new_pid = cursor.fetchone()[0]

        assert new_pid != old_pid

    def test_a_quiet_healthy_connection_is_kept(self):
        connection.ensure_connection()
        connection.health_check_enabled = True
        raw = connection.connection

        connection.health_check_done = False
        connection.close_if_health_check_failed()

        assert connection.connection is raw
        assert connection.health_check_done


def _terminate(pid: int) -> None:
    params = connection.get_connection_params()
    admin = psycopg2.connect(**{k: v for k, v in params.items() if k != "cursor_factory"})
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    admin.close()


def _wait_until_readable(raw, seconds: float = 10.0) -> None:
    """The server's goodbye arrives asynchronously; wait for it (bounded) instead of sleeping blindly."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([raw.fileno()], [], [], 0.1)[0]:
            return
    raise AssertionError("the terminated connection never became readable")


class TestGunicornConfig:
    def test_a_worker_freezes_the_start_up_heap_once_the_app_is_loaded(self, db):
        import gc
        import runpy
        from pathlib import Path

        config = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
        try:
            config["post_worker_init"](None)

            assert gc.get_freeze_count() > 0
        finally:
            gc.unfreeze()
        assert config["worker_class"] == "gthread"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestPreparedStatements:
    STATEMENT = Prepared("tests_double", "SELECT %(n)s * 2, %(word)s", {"n": "int", "word": "text"})

    def run(self, n, word="x"):
        with connection.cursor() as cursor:
            self.STATEMENT.execute(cursor, {"n": n, "word": word})
            return cursor.fetchone()

    def test_a_statement_is_prepared_once_per_connection_and_then_executed(self):
        assert self.run(2) == (4, "x")
        assert self.run(5, "it's") == (10, "it's")

        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = 'tests_double'")
            assert cursor.fetchone()[0] == 1

    def test_a_statement_deallocated_behind_its_back_is_prepared_again(self):
        self.run(1)
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")

        assert self.run(3) == (6, "x")

    def test_a_new_connection_prepares_it_again(self):
        self.run(1)
        connection.close()

        assert self.run(4) == (8, "x")

    def test_without_persistent_connections_nothing_is_prepared(self, settings):
        connection.settings_dict["CONN_MAX_AGE"], before = 0, connection.settings_dict["CONN_MAX_AGE"]
        try:
            connection.close()
            assert self.run(7) == (14, "x")
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_prepared_statements")
                assert cursor.fetchone()[0] == 0
        finally:
            connection.settings_dict["CONN_MAX_AGE"] = before
