from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from reporting.models import Report


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """The reports archive, read-only; generating happens on the reports page."""

    list_display = ("__str__", "day", "version", "rows_count", "generated_at", "generated_by", "downloads")
    list_filter = ("kind", "day")
    exclude = ("csv_content", "xlsx_content")
    readonly_fields = (
        "kind",
        "day",
        "version",
        "rows_count",
        "threshold_btc",
        "valued_at",
        "generated_at",
        "generated_by",
        "downloads",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("csv_content", "xlsx_content")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Download")
    def downloads(self, report):
        return format_html(
            '<a href="{}">CSV</a> · <a href="{}">XLSX</a>',
            reverse("reporting:download", args=[report.pk, "csv"]),
            reverse("reporting:download", args=[report.pk, "xlsx"]),
        )
