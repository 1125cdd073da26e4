from decimal import Decimal

from django.db import transaction

from backoffice.bulk import insert_idempotent
from tests.factories import NOW
from trading_risk.models import AssetPrice

TABLE = AssetPrice._meta.db_table
COLUMNS = ("asset", "at", "usd", "received_at")


def insert(rows):
    with transaction.atomic():
        return insert_idempotent(table=TABLE, columns=COLUMNS, rows=rows, key_size=2, compare=(2,))


class TestInsertIdempotent:
    def test_text_with_tabs_newlines_and_backslashes_arrives_unchanged(self, db):
        awkward = "A\tB\\C\nD"

        outcome = insert([(awkward, NOW, Decimal("1.5"), NOW)])

        assert outcome.inserted == 1
        assert AssetPrice.objects.get().asset == awkward

    def test_sorts_resent_rows_into_duplicates_and_conflicts(self, db):
        insert([("BTC", NOW, Decimal("1"), NOW), ("ETH", NOW, Decimal("2"), NOW)])

        outcome = insert(
            [("SOL", NOW, Decimal("3"), NOW), ("BTC", NOW, Decimal("1.000"), NOW), ("ETH", NOW, Decimal("2.5"), NOW)]
        )

        assert (outcome.inserted, outcome.duplicates, outcome.conflicts) == (1, [1], [2])

    def test_the_staging_table_is_reused_across_transactions(self, db):
        first = insert([("BTC", NOW, Decimal("1"), NOW)])
        second = insert([("ETH", NOW, Decimal("1"), NOW)])

        assert (first.inserted, second.inserted) == (1, 1)

    def test_a_batch_with_one_old_key_stores_each_new_row_exactly_once(self, db):
        insert([("ZZZ", NOW, Decimal("1"), NOW)])

        outcome = insert(
            [("AAA", NOW, Decimal("1"), NOW), ("BBB", NOW, Decimal("2"), NOW), ("ZZZ", NOW, Decimal("1"), NOW)]
        )

        assert (outcome.inserted, outcome.duplicates, outcome.conflicts) == (2, [2], [])
        assert sorted(AssetPrice.objects.values_list("asset", flat=True)) == ["AAA", "BBB", "ZZZ"]
