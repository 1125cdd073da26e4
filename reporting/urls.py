from django.urls import re_path

from reporting import views

app_name = "reporting"

urlpatterns = [
    re_path(r"^$", views.report_list, name="reports"),
    re_path(r"^generate/$", views.report_generate, name="generate"),
    re_path(r"^(?P<pk>\d+)\.(?P<extension>csv|xlsx)$", views.report_download, name="download"),
]
