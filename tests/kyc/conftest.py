import pytest

from kyc import selectors
from tests import factories


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded documents go to a directory of this test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_index():
    selectors.forget_index()
    yield
    selectors.forget_index()


@pytest.fixture
def desk(db):
    """First reviewer (trading desk) with the first-review and dossier permissions only."""
    return factories.make_staff(
        perms=("kyc.first_review", "kyc.manage_dossier", "kyc.view_kyccase", "kyc.view_document"), username="dora"
    )


@pytest.fixture
def compliance(db):
    return factories.make_staff(roles=("compliance officer",), username="carl")


@pytest.fixture
def second_compliance(db):
    return factories.make_staff(roles=("compliance officer",), username="cleo")
