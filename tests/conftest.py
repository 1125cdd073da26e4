import pytest
from rest_framework.test import APIClient

from accounts import geoip
from backoffice import api_clients, parameters
from tests import factories


@pytest.fixture(autouse=True)
def _fresh_parameter_cache():
    """Each test sees the risk parameters of its own database state."""
    parameters.clear_cache()
    geoip._cached_country.cache_clear()
    api_clients.forget_cached_tokens()
    yield
    parameters.clear_cache()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded files go to a directory of this test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _clean_redis_keys():
    """Counters and blocks live in Redis under this test run's prefix; each test starts without them."""
    yield
    from backoffice.redis_client import get_redis, key

    client = get_redis()
    names = list(client.scan_iter(match=key("*"), count=1000))
    if names:
        client.delete(*names)


@pytest.fixture
def engine(db):
    """An API client with the matching engine's default scopes."""
    client, token = factories.make_api_client()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    api.client_record = client
    return api


@pytest.fixture
def risk_officer(db):
    return factories.make_staff(roles=("risk officer",), username="rita")


@pytest.fixture
def second_risk_officer(db):
    return factories.make_staff(roles=("risk officer",), username="raj")


@pytest.fixture
def auditor(db):
    return factories.make_staff(roles=("auditor",), username="aude")


@pytest.fixture
def login(client):
    """Log a staff user in with both factors already checked (the login flow has its own tests)."""
    from accounts.staff_auth import SECOND_FACTOR_SESSION_KEY

    def log_in(user):
        client.force_login(user)
        session = client.session
        session[SECOND_FACTOR_SESSION_KEY] = factories.NOW.isoformat()
        session.save()
        return client

    return log_in
