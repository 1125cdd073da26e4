import pytest

from backoffice import approvals
from backoffice.errors import InvalidInput
from kyc import services
from kyc.models import Requirement
from tests.factories import NOW
from tests.kyc.builders import actor

pytestmark = pytest.mark.django_db
NEW = {
    "requirement_id": None,
    "track": "INDIVIDUAL",
    "level": 2,
    "kind": "DOCUMENT",
    "code": "proof_of_address",
    "label": "Proof of address",
    "active": True,
}


class TestKycConstructor:
    def test_the_defaults_follow_the_seed(self):
        codes = set(Requirement.objects.filter(track="CORPORATE").values_list("code", flat=True))

        assert {
            "BOARD_RESOLUTION",
            "POWER_OF_ATTORNEY",
            "ID_ULTIMATE_CONTROLLER",
            "ID_LARGEST_SHAREHOLDER",
            "authorised_person",
            "registry_link",
        } <= codes
        assert Requirement.objects.get(track="INDIVIDUAL", code="FACE_MATCH").level == 3

    def test_a_proposed_requirement_applies_only_when_another_officer_approves(self, compliance, second_compliance):
        change = services.propose_requirement(payload=NEW, reason="AML policy 2026", actor=actor(compliance), now=NOW)
        before = Requirement.objects.filter(code="PROOF_OF_ADDRESS").exists()

        approvals.approve_change(change_request=change, actor=actor(second_compliance), reason="ok", now=NOW)

        assert (before, Requirement.objects.get(code="PROOF_OF_ADDRESS").level) == (False, 2)

    def test_the_proposer_cannot_approve(self, compliance):
        change = services.propose_requirement(payload=NEW, reason="AML policy", actor=actor(compliance), now=NOW)

        with pytest.raises(approvals.SelfApproval):
            approvals.approve_change(change_request=change, actor=actor(compliance), reason="ok", now=NOW)

    def test_a_change_can_deactivate_a_requirement(self, compliance, second_compliance):
        face = Requirement.objects.get(track="INDIVIDUAL", code="FACE_MATCH")
        payload = {
            **NEW,
            "requirement_id": face.pk,
            "kind": "CHECK",
            "code": "FACE_MATCH",
            "level": 3,
            "label": face.label,
            "active": False,
        }
        change = services.propose_requirement(payload=payload, reason="vendor outage", actor=actor(compliance), now=NOW)

        approvals.approve_change(change_request=change, actor=actor(second_compliance), reason="ok", now=NOW)

        face.refresh_from_db()
        assert face.active is False

    def test_an_invalid_requirement_is_refused_when_proposed(self, compliance):
        with pytest.raises(InvalidInput):
            services.propose_requirement(payload={**NEW, "level": 7}, reason="x", actor=actor(compliance), now=NOW)
