import pytest
from rest_framework.test import APIClient

from backoffice import parameters
from tests import factories


@pytest.fixture(autouse=True)
def _fresh_parameter_cache():
    """Each test sees the risk parameters of its own database state."""
    parameters.clear_cache()
    yield
    parameters.clear_cache()


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
