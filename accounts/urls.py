from django.urls import path

from accounts import views

urlpatterns = [
    path("accounts/login/", views.login_view, name="staff-login"),
    path("accounts/enrol/", views.enrol_view, name="staff-enrol"),
    path("accounts/logout/", views.logout_view, name="staff-logout"),
]
