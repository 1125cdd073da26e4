"""Generating reports into the archive. Regenerating a day adds a new version; earlier versions are kept
unchanged, so what was filed can always be shown again. Every generation is in the operations log."""

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max
from openpyxl import Workbook

from backoffice import audit, parameters
from backoffice.errors import DomainError
from reporting import large_traders
from reporting.models import Report

# Text a spreadsheet would run as a formula (CSV/XLSX injection) is prefixed with an apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class GeneratedConcurrently(DomainError):
    """Another generation of this report finished at the same moment; generate it again."""

    code = "generated_concurrently"


def day_end(day: date) -> datetime:
    """The first instant after `day` (UTC): positions and prices are taken as of then."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


def generate_large_trader_report(*, day: date, actor: audit.Actor, now: datetime) -> Report:
    """Build the large-trader report for `day` (valued at the day's end, or now if earlier) and archive it."""
    valued_at = min(day_end(day), now)
    threshold = parameters.param("large_trader.threshold_btc", at=valued_at)
    rows = large_traders.report_rows(day=day, valued_at=valued_at, threshold_btc=threshold)
    return _archive(
        kind=Report.Kind.LARGE_TRADER,
        day=day,
        rows=rows,
        threshold_btc=threshold,
        valued_at=valued_at,
        actor=actor,
        now=now,
    )


def _archive(*, kind, day, rows, threshold_btc, valued_at, actor, now) -> Report:
    # The files are rendered before the transaction: it holds nothing while the workbook is built.
    csv_text, xlsx_bytes = to_csv(large_traders.HEADERS, rows), to_xlsx(large_traders.HEADERS, rows)
    try:
        with transaction.atomic():
            latest = Report.objects.filter(kind=kind, day=day).aggregate(v=Max("version"))["v"] or 0
            report = Report.objects.create(
                kind=kind,
                day=day,
                version=latest + 1,
                rows_count=len(rows),
                threshold_btc=threshold_btc,
                valued_at=valued_at,
                generated_at=now,
                generated_by=actor.label,
                csv_content=csv_text,
                xlsx_content=xlsx_bytes,
            )
            audit.record(
                actor=actor,
                action="report.generate",
                target=report,
                now=now,
                after={"kind": kind, "day": day, "version": report.version, "rows_count": len(rows)},
            )
    except IntegrityError as exc:  # two generations of one day raced for the same version number
        raise GeneratedConcurrently() from exc
    return report


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(headers: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([f"{v:f}" if isinstance(v, Decimal) else _cell(v) for v in row])
    return out.getvalue()


def to_xlsx(headers: list[str], rows: list[list]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Report")
    sheet.append(headers)
    for row in rows:
        sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
