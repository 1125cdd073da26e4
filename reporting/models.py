"""The reports archive: every generated report, its rows in CSV and XLSX, kept as generated."""

from django.db import models
from django.db.models import Q


class Report(models.Model):
    """One generated report for a day. Regenerating a day adds a new version; earlier ones are kept."""

    class Kind(models.TextChoices):
        LARGE_TRADER = "LARGE_TRADER", "Large-trader report"

    kind = models.CharField(max_length=20, choices=Kind)
    day = models.DateField()
    version = models.PositiveIntegerField()
    rows_count = models.PositiveIntegerField()
    threshold_btc = models.DecimalField(max_digits=38, decimal_places=18)
    valued_at = models.DateTimeField(help_text="reference prices at or before this time value the positions")
    generated_at = models.DateTimeField()
    generated_by = models.CharField(max_length=150)
    csv_content = models.TextField()
    xlsx_content = models.BinaryField()

    class Meta:
        permissions = [("generate_report", "Can generate and regenerate reports")]
        constraints = [
            models.UniqueConstraint(fields=["kind", "day", "version"], name="report_version_unique"),
            models.CheckConstraint(condition=Q(version__gte=1), name="report_version_positive"),
        ]
        ordering = ["-day", "kind", "-version"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.day:%Y-%m-%d} v{self.version}"

    def filename(self, extension: str) -> str:
        return f"{self.kind.lower().replace('_', '-')}-{self.day:%Y-%m-%d}-v{self.version}.{extension}"
