"""The kyc section of load_demo, against a tiny list written in OFAC's layout (settings.KYC_DEMO_SANCTIONS_DIR)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts.models import Customer, Restriction, User
from backoffice import audit
from backoffice.demo import DEMO_PASSWORD
from backoffice.models import OperationsLogEntry
from kyc import selectors, services
from kyc.models import Decision, Document, KycCase, SanctionedAddress, SanctionsList, ScreeningHit, Track
from tests.kyc.builders import ofac_row, write_ofac

pytestmark = pytest.mark.django_db

SDN = [
    ofac_row(9001, "HADDAD, Mohammed Karim", remarks="DOB 14 Feb 1971; nationality Syria."),
    ofac_row(9002, "PETROVSKY, Sergei Ivanovich", remarks="DOB 03 Jun 1966; nationality Russia."),
    ofac_row(9003, "VANTERPOOL, Desmond", remarks="DOB 21 Nov 1958; nationality Venezuela."),
    ofac_row(9004, "OKONJO, Emmanuel Chukwuma", remarks="DOB 1975; nationality Nigeria."),
    ofac_row(9005, "LINDQVIST, Anneliese Maria", remarks="DOB 09 Sep 1980; citizen Sweden."),
    ofac_row(9006, "KOROLENKO, Yevgeniy", remarks="DOB 17 Jan 1972; nationality Ukraine."),
    ofac_row(9007, "NORTHWIND SHIPPING LLC", kind="-0-"),
]
CONSOLIDATED = [ofac_row(7001, "EXAMPLE MARITIME TRADING CO", kind="-0-", program="NS-MBS")]
ETH_ADDRESS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"


@pytest.fixture
def sanctions(tmp_path, settings):
    """A reference folder laid out like ../shared/reference/sanctions, with a handful of entries."""
    folder = tmp_path / "sanctions"
    for sub in ("ofac/sdn-2026-01-02", "ofac/consolidated-nonsdn-2026-01", "crypto-addresses/lists"):
        (folder / sub).mkdir(parents=True)
    write_ofac(folder / "ofac/sdn-2026-01-02/sdn.csv", SDN)
    write_ofac(folder / "ofac/consolidated-nonsdn-2026-01/cons_prim.csv", CONSOLIDATED)
    (folder / "crypto-addresses/lists/sanctioned_addresses_ETH.txt").write_text(ETH_ADDRESS + "\n")
    settings.KYC_DEMO_SANCTIONS_DIR = str(folder)
    return folder


def load_demo(seed: int = 7) -> str:
    out = StringIO()
    call_command("load_demo", "--seed", str(seed), "--customers", "60", stdout=out)
    return next(line for line in out.getvalue().splitlines() if line.startswith("kyc: "))


def kyc_log() -> int:
    return OperationsLogEntry.objects.filter(action__startswith="kyc.").count()


class TestKycDemo:
    def test_plants_hits_and_cases_at_every_stage_and_a_rerun_adds_nothing(self, sanctions):
        summary = load_demo()

        assert "loaded OFAC_SDN 7 entries, OFAC_CONSOLIDATED 1 entries, OFAC_ADDRESSES 1 addresses" in summary
        assert set(SanctionsList.objects.values_list("source", flat=True)) == {
            "OFAC_SDN",
            "OFAC_CONSOLIDATED",
            "OFAC_ADDRESSES",
        }
        assert SanctionedAddress.objects.filter(source="OFAC_ADDRESSES").count() == 1
        # Lookalikes of listed people wait in the queue with their scores, and are restricted meanwhile.
        open_hits = ScreeningHit.objects.filter(status=ScreeningHit.Status.OPEN).select_related("entry")
        assert open_hits.count() >= 4
        assert all(hit.score >= 88 and hit.entry.source == "OFAC_SDN" for hit in open_hits)
        assert {hit.screened_name for hit in open_hits} != {hit.entry.name for hit in open_hits}
        restricted = set(Restriction.objects.filter(code="sanctions_hit").values_list("customer_id", flat=True))
        assert {hit.customer_id for hit in open_hits} <= restricted
        # One namesake resolved as a false match by compliance; the restriction was lifted and a rescreen keeps it.
        false_match = ScreeningHit.objects.get(status=ScreeningHit.Status.FALSE_MATCH)
        assert false_match.decided_by == "compliance"
        assert not Restriction.objects.filter(customer=false_match.customer, lifted_at__isnull=True).exists()
        assert KycCase.objects.get(customer=false_match.customer).status == KycCase.Status.APPROVED

        statuses = set(KycCase.objects.values_list("status", flat=True))
        assert statuses == set(KycCase.Status.values)
        self.assert_the_queue_is_realistic()
        assert "first reviewer 'desk' created" in summary

        counts = (KycCase.objects.count(), Document.objects.count(), ScreeningHit.objects.count(), kyc_log())
        again = load_demo()

        assert again == "kyc: already there (KYC cases exist)"
        assert (KycCase.objects.count(), Document.objects.count(), ScreeningHit.objects.count(), kyc_log()) == counts
        hits = ScreeningHit.objects.count()
        services.rescreen_all(actor=audit.Actor.system("test"), now=timezone.now())
        assert ScreeningHit.objects.count() == hits  # the false match is remembered; open hits stay as they are

    def assert_the_queue_is_realistic(self):
        now = timezone.now()
        open_cases = KycCase.objects.filter(closed_at__isnull=True)
        assert 15 <= KycCase.objects.count() <= 60
        assert any(not selectors.case_checklist(c).complete for c in open_cases.filter(status=KycCase.Status.OPEN))
        second = open_cases.filter(status=KycCase.Status.SECOND_REVIEW)
        assert second.filter(track=Track.CORPORATE).exists()
        assert second.filter(track=Track.INDIVIDUAL, requested_level__gte=2).exists()
        assert selectors.queue_summary(now=now)["overdue"] >= 1
        assigned = {u for c in open_cases for u in selectors.case_assignees(c)}
        assert set(User.objects.filter(pk__in=assigned).values_list("username", flat=True)) >= {"desk", "compliance"}
        # Decisions are signed; rejections and send-backs say why; approvals set the level as decided.
        decisions = Decision.objects.select_related("case", "decided_by")
        assert decisions.exists()
        assert all(services.signature_holds(d) for d in decisions)
        assert {d.decided_by.username for d in decisions} >= {"desk", "compliance"}
        assert all(len(d.reason) > 20 for d in decisions.filter(outcome__in=["REJECT", "SEND_BACK"]))
        approved = KycCase.objects.filter(status=KycCase.Status.APPROVED).select_related("customer")
        assert all(c.customer.kyc_level_source == Customer.KycSource.DECIDED for c in approved)
        assert set(Document.objects.values_list("content_type", flat=True)) == {"application/pdf", "image/png"}
        desk = User.objects.get(username="desk")
        assert [g.name for g in desk.groups.all()] == ["trading desk"]
        assert desk.has_second_factor
        assert desk.check_password(DEMO_PASSWORD)
        # The operations log tells the same story.
        actions = set(OperationsLogEntry.objects.values_list("action", flat=True))
        assert {"kyc.list.load", "kyc.rescreen", "kyc.hit.open", "kyc.hit.decide", "kyc.case.open"} <= actions
        assert {"kyc.document.add", "kyc.case.check", "kyc.case.decide", "kyc.case.reopen", "work.assign"} <= actions
        assert OperationsLogEntry.objects.filter(action="kyc.case.open").count() == KycCase.objects.count()

    def test_the_same_seed_plants_the_same_workload(self, sanctions):
        def workload():
            cases = KycCase.objects.order_by("customer__external_id").values_list(
                "customer__external_id", "customer__name", "status", "requested_level"
            )
            hits = ScreeningHit.objects.order_by("customer__external_id").values_list(
                "customer__external_id", "screened_name", "score", "status"
            )
            return [*cases, *hits]

        runs = []
        for _ in range(2):
            with transaction.atomic():
                load_demo(seed=11)
                runs.append(workload())
                transaction.set_rollback(True)

        assert runs[0] == runs[1]
        assert len(runs[0]) > 20

    def test_without_the_reference_folder_the_lists_are_skipped_and_the_cases_planted(self, tmp_path, settings):
        settings.KYC_DEMO_SANCTIONS_DIR = str(tmp_path / "absent")

        summary = load_demo()

        assert f"lists skipped (no reference data at {tmp_path / 'absent'})" in summary
        assert not SanctionsList.objects.exists()
        assert not ScreeningHit.objects.exists()
        assert set(KycCase.objects.values_list("status", flat=True)) == set(KycCase.Status.values)
