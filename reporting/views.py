"""Staff pages of the reports archive: the list, downloads, and generating a day's report.

Staff pages need a logged-in staff user who passed the second factor (accounts.staff_auth middleware);
reading needs `reporting.view_report` (auditors have it), generating `reporting.generate_report`.
"""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from backoffice import audit
from backoffice.errors import DomainError
from reporting import services
from reporting.models import Report

_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class GenerateForm(forms.Form):
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean_day(self):
        day = self.cleaned_data["day"]
        if day > timezone.now().date():
            raise forms.ValidationError("A report can only be built for today or an earlier day.")
        return day


def _staff(view):
    return login_required(permission_required("reporting.view_report", raise_exception=True)(view))


@_staff
def report_list(request):
    reports = Report.objects.defer("csv_content", "xlsx_content")[:200]
    context = {
        **admin.site.each_context(request),
        "title": "Reports archive",
        "reports": reports,
        "form": GenerateForm(initial={"day": date.today()}),
        "can_generate": request.user.has_perm("reporting.generate_report"),
    }
    return render(request, "reporting/report_list.html", context)


@_staff
def report_download(request, pk: int, extension: str):
    report = get_object_or_404(Report, pk=pk)
    content = report.csv_content.encode() if extension == "csv" else bytes(report.xlsx_content)
    response = HttpResponse(content, content_type=_TYPES[extension])
    response["Content-Disposition"] = f'attachment; filename="{report.filename(extension)}"'
    return response


@require_POST
@_staff
@permission_required("reporting.generate_report", raise_exception=True)
def report_generate(request):
    form = GenerateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect("reporting:reports")
    try:
        report = services.generate_large_trader_report(
            day=form.cleaned_data["day"], actor=audit.actor_from_request(request), now=timezone.now()
        )
    except DomainError as exc:
        messages.error(request, str(exc) or exc.__doc__)
    else:
        messages.success(request, f"{report} generated with {report.rows_count} row(s).")
    return redirect("reporting:reports")
