import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from backoffice import audit
from backoffice.models import OperationsLogEntry
from tests.factories import NOW, SYSTEM, make_customer


def write(n: int = 1, **fields) -> list[OperationsLogEntry]:
    with transaction.atomic():
        return [
            audit.record(
                actor=SYSTEM,
                action="test.write",
                target=("test.thing", i),
                now=NOW,
                before={"n": i},
                after={"n": i + 1},
                **fields,
            )
            for i in range(n)
        ]


def tamper(sql: str, params: list) -> None:
    """Change the log behind the application's back, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE backoffice_operationslogentry DISABLE TRIGGER operations_log_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE backoffice_operationslogentry ENABLE TRIGGER operations_log_append_only")


class TestRecord:
    def test_refuses_to_write_outside_a_transaction(self, db):
        with transaction.atomic():
            pass

        # pytest-django wraps the test in a transaction, so leave it to prove the guard.
        connection.in_atomic_block, saved = False, connection.in_atomic_block
        try:
            with pytest.raises(RuntimeError, match="inside the transaction"):
                audit.record(actor=SYSTEM, action="x", target=("t", 1), now=NOW)
        finally:
            connection.in_atomic_block = saved

    def test_chains_each_entry_to_the_previous_one(self, db):
        first, second, third = write(3)

        assert first.prev_hash == audit.GENESIS_HASH
        assert second.prev_hash == first.hash
        assert third.prev_hash == second.hash

    def test_stores_actor_target_before_after_reason_and_ip(self, db, risk_officer):
        customer = make_customer()
        actor = audit.Actor.staff(risk_officer, ip="2001:0db8:0000::1")

        with transaction.atomic():
            entry = audit.record(
                actor=actor,
                action="customer.update",
                target=customer,
                now=NOW,
                before={"name": "A"},
                after={"name": "B"},
                reason="typo",
            )

        stored = OperationsLogEntry.objects.get(pk=entry.pk)
        assert (stored.actor, stored.actor_user_id, stored.action) == ("rita", risk_officer.pk, "customer.update")
        assert (stored.target_type, stored.target_id) == ("accounts.customer", str(customer.pk))
        assert (stored.before, stored.after, stored.reason) == ({"name": "A"}, {"name": "B"}, "typo")
        assert stored.ip == "2001:db8::1"
        assert audit.entry_hash(stored) == stored.hash

    def test_makes_decimals_and_times_json_safe_so_the_hash_survives_the_round_trip(self, db):
        from decimal import Decimal

        with transaction.atomic():
            entry = audit.record(
                actor=SYSTEM,
                action="x",
                target=("t", 1),
                now=NOW,
                after={"amount": Decimal("1.50"), "at": NOW, "tags": {"b", "a"}},
            )

        stored = OperationsLogEntry.objects.get(pk=entry.pk)
        assert stored.after == {"amount": "1.50", "at": NOW.isoformat(), "tags": ["a", "b"]}
        assert audit.first_broken_link() is None


class TestAppendOnly:
    def test_the_database_refuses_updates(self, db):
        (entry,) = write()

        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            OperationsLogEntry.objects.filter(pk=entry.pk).update(reason="edited")

    def test_the_database_refuses_deletes(self, db):
        (entry,) = write()

        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            OperationsLogEntry.objects.filter(pk=entry.pk).delete()

    def test_the_database_refuses_truncate_on_an_ordinary_connection(self, db):
        write()

        with (
            pytest.raises(DatabaseError, match="TRUNCATE refused"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("SET LOCAL backoffice.allow_truncate = off")
            cursor.execute("TRUNCATE backoffice_operationslogentry")

        assert OperationsLogEntry.objects.exists()


class TestVerifyAuditLog:
    def test_reports_an_intact_chain(self, db, capsys):
        write(5)

        call_command("verify_audit_log")

        assert "every link verified" in capsys.readouterr().out

    def test_finds_the_first_altered_entry(self, db):
        entries = write(5)
        tamper("UPDATE backoffice_operationslogentry SET after = '{\"n\": 99}' WHERE id = %s", [entries[2].pk])

        with pytest.raises(CommandError, match=f"#{entries[2].pk}.*altered"):
            call_command("verify_audit_log")

    def test_finds_a_removed_entry_at_its_successor(self, db):
        entries = write(5)
        tamper("DELETE FROM backoffice_operationslogentry WHERE id = %s", [entries[1].pk])

        broken = audit.first_broken_link()

        assert broken.entry_id == entries[2].pk
        assert "removed" in broken.problem


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrentWriters:
    def test_keeps_one_unbroken_chain_when_many_transactions_write_at_once(self):
        errors = []

        def writer():
            try:
                for _ in range(10):
                    write(2)
            except Exception as exc:  # collected, so the assertion below names it
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=writer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        assert OperationsLogEntry.objects.count() == 120
        assert audit.first_broken_link() is None
