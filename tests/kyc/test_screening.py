import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Customer, Restriction
from backoffice import parameters
from backoffice.errors import InvalidInput
from backoffice.models import OperationsLogEntry, ParameterValue
from kyc import selectors, services
from kyc.models import ListEntry, SanctionsList, ScreeningHit
from tests.factories import NOW, SYSTEM, make_account, make_customer, make_staff
from tests.kyc.builders import actor, ofac_row, write_ofac

pytestmark = pytest.mark.django_db
OFAC = Path("/work/shared/reference/sanctions/ofac")
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def sdn(tmp_path):
    """A small list in OFAC's real CSV layout."""
    return write_ofac(
        tmp_path / "sdn.csv",
        [
            ofac_row(
                101,
                "DOE, Johnathan",
                remarks="DOB 12 Mar 1970; nationality Iran; "
                "Digital Currency Address - ETH 0x098B716B8Aaf21512996dC57EB0615e2383E2f96.",
            ),
            ofac_row(102, "EXAMPLE TRADING LLC", kind="-0-"),
        ],
    )


def load(path, *, now=NOW, source="OFAC_SDN"):
    return services.load_ofac_list(source=source, primary=path, actor=SYSTEM, now=now)


def screen(customer, now=NOW):
    return services.screen_customer(customer=customer, actor=SYSTEM, now=now)


def sanctions_restrictions(customer):
    return Restriction.objects.filter(customer=customer, code="sanctions_hit", lifted_at__isnull=True).count()


class TestScreenCustomer:
    def test_a_hit_goes_to_the_queue_and_restricts_the_customer(self, sdn):
        load(sdn)
        customer = make_customer(name="Johnathan Doe", date_of_birth=date(1970, 3, 12), country="IR")
        make_account(customer=customer)

        hits = screen(customer)

        assert [(h.matched_name, h.score, h.status) for h in hits] == [("Johnathan DOE", 100, "OPEN")]
        assert hits[0].reasons[1:] == ["date of birth 1970-03-12 matches", "country IR matches"]
        assert sanctions_restrictions(customer) == 1

    def test_someone_else_is_not_flagged(self, sdn):
        load(sdn)
        customer = make_customer(name="Maria Leao", date_of_birth=date(1980, 1, 1))

        assert screen(customer) == []
        assert sanctions_restrictions(customer) == 0

    def test_a_false_match_lifts_the_restriction_and_is_remembered(self, sdn, compliance):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")
        hit = screen(customer)[0]

        services.decide_hit(
            hit=hit, true_match=False, reason="different person, passport checked", actor=actor(compliance), now=NOW
        )
        again = screen(customer, LATER)

        assert (sanctions_restrictions(customer), again) == (0, [])

    def test_a_remembered_false_match_alerts_again_when_the_customer_changes(self, sdn, compliance):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")
        services.decide_hit(
            hit=screen(customer)[0], true_match=False, reason="different person", actor=actor(compliance), now=NOW
        )
        Customer.objects.filter(pk=customer.pk).update(date_of_birth=date(1970, 3, 12))

        assert len(screen(customer, LATER)) == 1
        assert sanctions_restrictions(customer) == 1

    def test_a_remembered_false_match_alerts_again_when_the_list_entry_changes(self, sdn, compliance, tmp_path):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")
        services.decide_hit(
            hit=screen(customer)[0], true_match=False, reason="different person", actor=actor(compliance), now=NOW
        )
        changed = write_ofac(tmp_path / "sdn2.csv", [ofac_row(101, "DOE, Johnathan", remarks="DOB 1971.")])
        load(changed, now=LATER)

        assert len(screen(customer, LATER)) == 1

    def test_a_true_match_keeps_the_restriction(self, sdn, compliance):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")

        services.decide_hit(
            hit=screen(customer)[0], true_match=True, reason="same passport number", actor=actor(compliance), now=NOW
        )

        assert sanctions_restrictions(customer) == 1
        assert screen(customer, LATER) == []

    def test_deciding_needs_a_reason_and_the_permission(self, sdn):
        load(sdn)
        hit = screen(make_customer(name="Johnathan Doe"))[0]
        desk = make_staff(perms=("kyc.first_review",))

        with pytest.raises(InvalidInput):
            services.decide_hit(hit=hit, true_match=False, reason=" ", actor=SYSTEM, now=NOW)
        with pytest.raises(Exception, match="decide_screening_hit"):
            services.decide_hit(hit=hit, true_match=False, reason="no", actor=actor(desk), now=NOW)

    def test_a_hit_that_no_longer_scores_is_cleared_and_the_restriction_lifted(self, sdn):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")
        screen(customer)
        Customer.objects.filter(pk=customer.pk).update(name="Maria Leao")

        screen(customer, LATER)

        assert list(ScreeningHit.objects.values_list("status", flat=True)) == ["CLEARED"]
        assert sanctions_restrictions(customer) == 0

    def test_the_review_threshold_is_a_risk_parameter(self, sdn):
        load(sdn)
        customer = make_customer(name="Jonathan Dow")  # name 88, country -2
        found_at_default = screen(customer)
        ParameterValue.objects.create(
            definition_id="kyc.name_match_threshold", value="80", effective_from=NOW, created_at=NOW
        )
        parameters.clear_cache()

        assert (found_at_default, len(screen(customer, LATER))) == ([], 1)


class TestListLoads:
    def test_a_load_records_its_version_and_re_screens_everyone(self, sdn, django_capture_on_commit_callbacks):
        customer = make_customer(name="Johnathan Doe")

        with django_capture_on_commit_callbacks(execute=True):
            result = load(sdn)

        assert (result.changed, result.version.entries, result.version.added, len(result.version.version)) == (
            True,
            2,
            2,
            64,
        )
        assert ScreeningHit.objects.filter(customer=customer, status="OPEN").count() == 1
        assert OperationsLogEntry.objects.filter(action="kyc.rescreen").count() == 1

    def test_loading_the_same_files_again_changes_nothing(self, sdn, django_capture_on_commit_callbacks):
        load(sdn)

        with django_capture_on_commit_callbacks() as callbacks:
            result = load(sdn, now=LATER)

        assert (result.changed, SanctionsList.objects.count(), callbacks) == (False, 1, [])

    def test_a_newer_file_adds_changes_and_removes_entries(self, sdn, tmp_path):
        load(sdn)
        newer = write_ofac(tmp_path / "newer.csv", [ofac_row(101, "DOE, John"), ofac_row(103, "ROE, Richard")])

        version = load(newer, now=LATER).version

        assert (version.added, version.changed, version.removed) == (1, 1, 1)
        assert ListEntry.objects.get(ent_num="102").removed_at == LATER
        assert SanctionsList.objects.count() == 2

    def test_the_index_is_rebuilt_when_the_list_version_changes(self, sdn, tmp_path):
        load(sdn)
        first = selectors.screening_index()
        same = selectors.screening_index()
        load(write_ofac(tmp_path / "newer.csv", [ofac_row(103, "ROE, Richard")]), now=LATER)

        assert same is first
        assert selectors.screening_index() is not first

    def test_a_slice_of_the_real_sdn_file_loads_with_its_addresses(self, tmp_path):
        lines = (OFAC / "sdn-2024-05-03/sdn.csv").read_bytes().split(b"\r\n")
        yan = next(line for line in lines if line.startswith(b"25308,"))
        write_ofac_bytes = tmp_path / "sdn.csv"
        write_ofac_bytes.write_bytes(b"\r\n".join(lines[:300] + [yan]) + b"\r\n\x1a")

        version = load(write_ofac_bytes).version

        assert version.entries == 301
        match = selectors.address_risk(network="BTC", address="12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h")
        assert (match.listed_name, match.source) == ("YAN, Xiaobing", "OFAC_SDN")


class TestRescreenAll:
    def test_reads_customers_in_bulk_whatever_their_number(self, sdn):
        load(sdn)
        make_customer(name="Johnathan Doe")
        services.rescreen_all(actor=SYSTEM, now=NOW)
        counts = []
        for _ in range(2):
            for n in range(30):
                make_customer(name=f"Person Number{n} Example")
            with CaptureQueriesContext(connection) as run:
                services.rescreen_all(actor=SYSTEM, now=LATER)
            counts.append(len(run))

        assert counts[0] == counts[1]

    def test_writes_only_customers_whose_hits_change(self, sdn):
        load(sdn)
        for n in range(30):
            make_customer(name=f"Person Number{n} Example")
        target = make_customer(name="Johnathan Doe")

        summary = services.rescreen_all(actor=SYSTEM, now=NOW)
        again = services.rescreen_all(actor=SYSTEM, now=LATER)

        assert (summary["matched"], summary["changed"], summary["opened"]) == (1, 1, 1)
        assert (again["changed"], again["opened"]) == (0, 0)
        assert ScreeningHit.objects.get().customer == target

    def test_remembers_false_matches(self, sdn, compliance):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")
        services.rescreen_all(actor=SYSTEM, now=NOW)
        services.decide_hit(
            hit=ScreeningHit.objects.get(), true_match=False, reason="other person", actor=actor(compliance), now=NOW
        )

        summary = services.rescreen_all(actor=SYSTEM, now=LATER)

        assert (summary["matched"], summary["changed"], sanctions_restrictions(customer)) == (1, 0, 0)

    def test_clears_hits_of_customers_who_no_longer_match(self, sdn):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")
        services.rescreen_all(actor=SYSTEM, now=NOW)
        Customer.objects.filter(pk=customer.pk).update(name="Somebody Else")

        summary = services.rescreen_all(actor=SYSTEM, now=LATER)

        assert summary["changed"] == 1
        assert ScreeningHit.objects.get().status == "CLEARED"


class TestAddressRisk:
    def test_list_addresses_match_on_every_evm_network_in_any_case(self, sdn):
        load(sdn)

        found = [
            selectors.address_risk(network=n, address=a)
            for n, a in [
                ("ETH", "0x098b716b8aaf21512996dc57eb0615e2383e2f96"),
                ("BSC", "0x098B716B8AAF21512996DC57EB0615E2383E2F96"),
            ]
        ]

        assert [m.listed_name for m in found] == ["DOE, Johnathan", "DOE, Johnathan"]

    def test_base58_addresses_are_case_sensitive(self, compliance):
        services.add_high_risk_address(
            network="TRX",
            address="TXeXtR5VPYqHvEYJhSiuZMbPgVnFSqvQtz",
            reason="reported scam wallet",
            actor=actor(compliance),
            now=NOW,
        )

        assert selectors.address_risk(network="TRX", address="TXeXtR5VPYqHvEYJhSiuZMbPgVnFSqvQtz").origin == "STAFF"
        assert selectors.address_risk(network="TRX", address="txextr5vpyqhveyjhsiuzmbpgvnfsqvqtz") is None

    def test_bech32_addresses_match_in_either_case(self, compliance):
        services.add_high_risk_address(
            network="BTC",
            address="bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh",
            reason="reported scam wallet",
            actor=actor(compliance),
            now=NOW,
        )

        match = selectors.address_risk(network="BTC", address="BC1QXY2KGDYGJRSQTZQ2N0YRF2493P83KKFJHX0WLH")

        assert match.reason == "reported scam wallet"

    def test_a_removed_staff_address_no_longer_matches(self, compliance):
        row = services.add_high_risk_address(
            network="ETH", address="0x" + "ab" * 20, reason="scam", actor=actor(compliance), now=NOW
        )

        services.remove_high_risk_address(row=row, reason="wallet recovered", actor=actor(compliance), now=LATER)

        assert selectors.address_risk(network="ETH", address="0x" + "ab" * 20) is None

    def test_an_unknown_address_is_not_a_risk(self, sdn):
        load(sdn)

        assert selectors.address_risk(network="ETH", address="0x" + "00" * 20) is None


class TestKycLevelGate:
    @pytest.mark.parametrize(
        ("level", "action", "allowed"),
        [
            (0, "withdrawal", False),
            (1, "withdrawal", True),
            (1, "margin", False),
            (2, "margin", True),
        ],
    )
    def test_an_action_needs_its_configured_level(self, level, action, allowed):
        customer = make_customer(kyc_level=level)

        assert selectors.meets_level(customer, selectors.required_level(action, at=NOW)) is allowed

    def test_gives_the_api_reason_code_when_the_level_is_too_low(self):
        assert selectors.level_reasons(make_customer(kyc_level=0), "withdrawal", at=NOW) == ["kyc_level_insufficient"]
        assert selectors.level_reasons(make_customer(kyc_level=1), "withdrawal", at=NOW) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentScreens:
    def test_screens_racing_on_one_customer_open_one_hit_and_one_restriction(self, sdn):
        load(sdn)
        customer = make_customer(name="Johnathan Doe")
        make_account(customer=customer)
        selectors.screening_index()
        start, errors = threading.Barrier(6), []

        def screen_now():
            try:
                start.wait()
                services.screen_customer(customer=customer, actor=SYSTEM, now=NOW)
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=screen_now) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        assert ScreeningHit.objects.filter(customer=customer).count() == 1
        assert sanctions_restrictions(customer) == 1
